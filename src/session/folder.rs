//! A model's or a checkpoint's files in a folder on disk (native): written so that an
//! interruption never leaves half a file, or half a checkpoint.

use std::path::Path;

use crate::{Error, Result};

fn io(what: &Path, err: std::io::Error) -> Error {
    Error::Data(format!("{}: {err}", what.display()))
}

/// Write `dir/name` for each file: beside, then renamed over.
pub fn write(dir: &Path, files: &[(String, Vec<u8>)]) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    for (name, data) in files {
        // A name may hold a folder (`adapter/adapter_config.json`).
        let path = dir.join(name);
        let parent = path.parent().unwrap_or(dir);
        std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        let file = path.file_name().map(|f| f.to_string_lossy().to_string());
        let tmp = parent.join(format!(".{}.tmp", file.unwrap_or_default()));
        std::fs::write(&tmp, data)
            .and_then(|_| std::fs::rename(&tmp, &path))
            .map_err(|e| io(&path, e))?;
    }
    Ok(())
}

/// Replace the folder `dir` with `files`, whole: written beside, then swapped in (a kill
/// between the two renames leaves the previous folder as `.{dir}.old`, which [`read`] finds).
pub fn replace(dir: &Path, files: &[(String, Vec<u8>)]) -> Result<()> {
    let [new, old] = [".new", ".old"].map(|end| beside(dir, end));
    std::fs::remove_dir_all(&new).ok();
    write(&new, files)?;
    std::fs::remove_dir_all(&old).ok();
    if dir.exists() {
        std::fs::rename(dir, &old).map_err(|e| io(dir, e))?;
    }
    std::fs::rename(&new, dir).map_err(|e| io(dir, e))?;
    std::fs::remove_dir_all(&old).ok();
    Ok(())
}

/// Remove `dir` and what [`replace`] may have left beside it.
pub fn remove(dir: &Path) {
    for path in [dir.to_path_buf(), beside(dir, ".new"), beside(dir, ".old")] {
        std::fs::remove_dir_all(path).ok();
    }
}

/// The files in `dir` (or in the folder a kill left in the middle of [`replace`]).
pub fn read(dir: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let old = beside(dir, ".old");
    let found = [dir, old.as_path()].into_iter().find(|d| d.is_dir());
    let found = found.ok_or_else(|| Error::Data(format!("{}: no such folder", dir.display())))?;
    let mut files = Vec::new();
    for entry in std::fs::read_dir(found).map_err(|e| io(found, e))? {
        let path = entry.map_err(|e| io(found, e))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or(".");
        if path.is_file() && !name.starts_with('.') {
            let bytes = std::fs::read(&path).map_err(|e| io(&path, e))?;
            files.push((name.to_string(), bytes));
        }
    }
    Ok(files)
}

/// `.{name}{end}` beside `dir`.
fn beside(dir: &Path, end: &str) -> std::path::PathBuf {
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("folder");
    dir.with_file_name(format!(".{name}{end}"))
}
