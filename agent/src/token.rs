//! The write token: a random secret in `<db>.token` (mode 0600), created when the agent first
//! starts on a store. Anything that writes through the agent's HTTP endpoint (profile uploads)
//! sends it as `Authorization: Bearer …`; a web page cannot read the file, nor send the header
//! without a CORS preflight the agent refuses.

use std::io::{Read as _, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

/// `<db>.token`.
pub fn path(db: &Path) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(".token");
    db.with_file_name(name)
}

/// The token of the store at `db`, if there is one and it is readable (never through a
/// symbolic link: a link planted there must not choose the token).
pub fn read(db: &Path) -> Option<String> {
    let mut t = String::new();
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path(db))
        .ok()?
        .read_to_string(&mut t)
        .ok()?;
    let t = t.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

/// The token of the store at `db`, created (32 random bytes, hex, 0600) when missing.
pub fn ensure(db: &Path) -> std::io::Result<String> {
    if let Some(t) = read(db) {
        return Ok(t);
    }
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let p = path(db);
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&p).or_else(|e| {
        // Another process created it meanwhile: use theirs.
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            std::fs::OpenOptions::new().append(true).custom_flags(libc::O_NOFOLLOW).open(&p)
        } else {
            Err(e)
        }
    })?;
    if read(db).is_some() {
        return read(db).ok_or_else(|| std::io::Error::other("token vanished"));
    }
    f.write_all(token.as_bytes())?;
    f.write_all(b"\n")?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn a_token_is_created_once_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("perf.db");
        assert_eq!(super::read(&db), None);
        let t = super::ensure(&db).unwrap();
        assert_eq!(t.len(), 64);
        assert_eq!(super::ensure(&db).unwrap(), t, "kept across starts");
        assert_eq!(super::read(&db), Some(t));
        let mode = std::fs::metadata(super::path(&db)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
