//! The agent's own CPU time and resident memory from `/proc/self/stat`: one file.
//!
//! sysinfo's process refresh read the process's status and listed its threads' directories
//! at every sample (about a sixth of an idle agent's writer CPU); the two figures are in
//! this one line.

use std::path::Path;

/// CPU time used so far (user and system), milliseconds, and resident memory, bytes.
pub fn read(path: &Path) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(path).ok()?;
    // SAFETY: sysconf only reads a configuration value; any name is allowed.
    let (ticks, page) = unsafe { (libc::sysconf(libc::_SC_CLK_TCK), libc::sysconf(libc::_SC_PAGESIZE)) };
    parse(&text, u64::try_from(ticks).ok()?, u64::try_from(page).ok()?)
}

/// [`read`]'s parse, given the clock ticks a second and the page size. The command name, in
/// parentheses, may hold spaces and parentheses: the fields are counted after its last `)`.
pub fn parse(text: &str, ticks_per_s: u64, page_bytes: u64) -> Option<(u64, u64)> {
    let (_, after) = text.rsplit_once(')')?;
    // After the name: state (field 3), …, utime (14), stime (15), …, rss (24).
    let fields: Vec<&str> = after.split_whitespace().take(22).collect();
    let num = |i: usize| fields.get(i)?.parse::<u64>().ok();
    let (utime, stime, rss) = (num(11)?, num(12)?, num(21)?);
    if ticks_per_s == 0 {
        return None;
    }
    Some(((utime + stime) * 1000 / ticks_per_s, rss * page_bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_and_memory_are_counted_after_the_name_whatever_it_holds() {
        let line = "4242 (perf agent) (x)) S 1 4242 4242 0 -1 4194560 1513 0 0 0 250 125 0 0 20 0 5 0 1234 123456789 6000 18446744073709551615\n";
        assert_eq!(parse(line, 100, 4096), Some((3750, 6000 * 4096)));
        assert_eq!(parse("1 (x) S 1 2", 100, 4096), None, "cut short");
        assert_eq!(parse(line, 0, 4096), None);
    }

    #[test]
    fn this_process_has_used_some_cpu_and_memory() {
        let (_, rss) = read(Path::new("/proc/self/stat")).expect("/proc/self/stat");
        assert!(rss > 1_000_000, "{rss}");
    }
}
