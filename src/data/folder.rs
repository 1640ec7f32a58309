//! A folder of class subfolders (the class names are the folder names), listed, never decoded
//! up front: images are read batch by batch when features are computed. Audio datasets are
//! listed the same way ([`Media::Audio`]).

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Extensions the decoder reads (lower case).
pub const IMAGE_EXTENSIONS: [&str; 7] = ["png", "jpg", "jpeg", "webp", "gif", "bmp", "jfif"];

/// Extensions of the audio files tabtune decodes (lower case).
pub const AUDIO_EXTENSIONS: [&str; 7] = ["wav", "wave", "mp3", "ogg", "oga", "flac", "webm"];

/// What the files of a listing are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    /// Images ([`IMAGE_EXTENSIONS`]).
    Image,
    /// Audio ([`AUDIO_EXTENSIONS`]).
    Audio,
}

impl Media {
    fn extensions(self) -> &'static [&'static str] {
        match self {
            Self::Image => &IMAGE_EXTENSIONS,
            Self::Audio => &AUDIO_EXTENSIONS,
        }
    }

    /// "images" or "audio files".
    fn plural(self) -> &'static str {
        match self {
            Self::Image => "images",
            Self::Audio => "audio files",
        }
    }

    fn not_one(self) -> String {
        match self {
            Self::Image => "not an image file (by extension)".into(),
            Self::Audio => "not an audio file (by extension)".into(),
        }
    }

    /// Whether `path`'s extension is one of this media's.
    pub fn accepts(self, path: &Path) -> bool {
        path.extension()
            .map(|e| e.to_string_lossy().to_lowercase())
            .is_some_and(|e| self.extensions().contains(&e.as_str()))
    }
}

/// The listing of an image (or audio) dataset: files with their class index.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageFolder {
    /// Class names in [`super::classes::order`], indexed by label.
    pub classes: Vec<String>,
    /// (file, label), sorted by class then file name.
    pub items: Vec<(PathBuf, u32)>,
    /// Files left out with the reason (not an image by extension), for the report.
    pub skipped: Vec<(PathBuf, String)>,
}

impl ImageFolder {
    /// List `root`: one subfolder per class, image files inside. Fails, naming the folder, on
    /// fewer than two classes or a class without a single image.
    pub fn open(root: &Path) -> Result<Self> {
        Self::open_media(root, Media::Image)
    }

    /// [`Self::open`] for files of `media`.
    pub fn open_media(root: &Path, media: Media) -> Result<Self> {
        let read = |dir: &Path| -> Result<Vec<PathBuf>> {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
                .map_err(|err| Error::Data(format!("{}: cannot list: {err}", dir.display())))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| !is_hidden(p))
                .collect();
            entries.sort();
            Ok(entries)
        };
        let mut class_dirs: Vec<PathBuf> = read(root)?.into_iter().filter(|p| p.is_dir()).collect();
        // The class order rule (numeric names as numbers: "2" before "10").
        let name = |p: &PathBuf| {
            p.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        };
        let order = super::classes::order(class_dirs.iter().map(name));
        class_dirs.sort_by_key(|p| super::classes::index_of(&order, &name(p)));
        if class_dirs.len() < 2 {
            return Err(Error::Data(format!(
                "{}: found {} class folder(s); a classifier needs at least 2 subfolders, one per class",
                root.display(),
                class_dirs.len()
            )));
        }
        let mut folder = Self {
            classes: Vec::new(),
            items: Vec::new(),
            skipped: Vec::new(),
        };
        for dir in class_dirs {
            let label = folder.classes.len() as u32;
            let before = folder.items.len();
            // Subfolders of a class folder belong to its class (as Keras's
            // image_dataset_from_directory reads them), depth first in name order.
            let mut pending = read(&dir)?;
            pending.reverse();
            while let Some(file) = pending.pop() {
                if file.is_dir() {
                    pending.extend(read(&file)?.into_iter().rev());
                } else if media.accepts(&file) {
                    folder.items.push((file, label));
                } else {
                    folder.skipped.push((file, media.not_one()));
                }
            }
            if folder.items.len() == before {
                return Err(Error::Data(format!(
                    "{}: class folder has no {} ({})",
                    dir.display(),
                    media.plural(),
                    media.extensions().join(", ")
                )));
            }
            folder.classes.push(
                dir.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
        Ok(folder)
    }

    /// A list of (file, label) pairs: a CSV or TSV file with one `file,label` per line (a first
    /// line `file,label` / `path,label` is a header), or a JSONL file of `{"file", "label"}`
    /// objects, files relative to the list's folder. The
    /// classes are the distinct labels, sorted. Files that cannot be read are reported when
    /// they are loaded, by name; a line without two fields stops with its line number.
    pub fn from_list(list: &Path) -> Result<Self> {
        Self::from_list_media(list, Media::Image)
    }

    /// [`Self::from_list`] for files of `media`.
    pub fn from_list_media(list: &Path, media: Media) -> Result<Self> {
        let text = std::fs::read_to_string(list)
            .map_err(|err| Error::Data(format!("{}: cannot read: {err}", list.display())))?;
        let base = list.parent().unwrap_or(Path::new("."));
        let jsonl = list.extension().is_some_and(|e| {
            ["jsonl", "ndjson"].contains(&e.to_string_lossy().to_lowercase().as_str())
        });
        let mut pairs = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            if jsonl {
                // {"file": ..., "label": ...} (or "path" / "audio" / "image" / "file_name").
                let fail =
                    |why: String| Error::Data(format!("{} line {}: {why}", list.display(), n + 1));
                let row: serde_json::Value =
                    serde_json::from_str(line).map_err(|e| fail(format!("not JSON: {e}")))?;
                let field = |keys: &[&str]| {
                    keys.iter()
                        .find_map(|k| row.get(*k))
                        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                };
                let file = field(&["file", "path", "file_name", "audio", "image"]);
                match (file, field(&["label"])) {
                    (Some(f), Some(l)) if !f.is_empty() && !l.trim().is_empty() => {
                        pairs.push((base.join(f), l.trim().to_string()))
                    }
                    _ => {
                        return Err(fail(format!(
                            "expected {{\"file\": ..., \"label\": ...}}, found {line}"
                        )));
                    }
                }
                continue;
            }
            let sep = if line.contains('\t') { '\t' } else { ',' };
            let mut fields = line.splitn(2, sep).map(|f| f.trim().trim_matches('"'));
            let (file, label) = match (fields.next(), fields.next()) {
                (Some(f), Some(l)) if !f.is_empty() && !l.is_empty() => (f, l),
                _ => {
                    return Err(Error::Data(format!(
                        "{} line {}: expected `file,label`, found {line:?}",
                        list.display(),
                        n + 1
                    )));
                }
            };
            if n == 0
                && ["file", "path", "image", "audio", "file_name"]
                    .contains(&file.to_lowercase().as_str())
            {
                continue;
            }
            pairs.push((base.join(file), label.to_string()));
        }
        let classes = super::classes::order(pairs.iter().map(|(_, l)| l));
        if classes.len() < 2 {
            return Err(Error::Data(format!(
                "{}: found {} label(s); a classifier needs at least 2",
                list.display(),
                classes.len()
            )));
        }
        let mut folder = Self {
            items: Vec::new(),
            skipped: Vec::new(),
            classes: Vec::new(),
        };
        for (file, label) in pairs {
            let index = super::classes::index_of(&classes, &label).expect("label listed");
            if media.accepts(&file) {
                folder.items.push((file, index));
            } else {
                folder.skipped.push((file, media.not_one()));
            }
        }
        folder.classes = classes;
        if let Some(empty) = folder.counts().iter().position(|&c| c == 0) {
            return Err(Error::Data(format!(
                "{}: label {:?} has no {}",
                list.display(),
                folder.classes[empty],
                media.plural()
            )));
        }
        Ok(folder)
    }

    /// A folder of class subfolders, or a list file (see [`Self::from_list`]).
    pub fn open_any(path: &Path) -> Result<Self> {
        Self::open_any_media(path, Media::Image)
    }

    /// [`Self::open_any`] for files of `media`.
    pub fn open_any_media(path: &Path, media: Media) -> Result<Self> {
        if path.is_file() {
            Self::from_list_media(path, media)
        } else {
            Self::open_media(path, media)
        }
    }

    /// Labels of the items, in order.
    pub fn labels(&self) -> Vec<u32> {
        self.items.iter().map(|(_, l)| *l).collect()
    }

    /// Images per class.
    pub fn counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes.len()];
        for (_, l) in &self.items {
            counts[*l as usize] += 1;
        }
        counts
    }
}

fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(name: &str, files: &[&str]) -> PathBuf {
        let root =
            std::env::temp_dir().join(format!("tabtune-folder-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for f in files {
            let p = root.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            if !f.ends_with('/') {
                std::fs::write(p, b"x").unwrap();
            }
        }
        root
    }

    #[test]
    fn classes_are_sorted_folder_names_and_non_images_are_reported() {
        let root = tree(
            "ok",
            &[
                "dog/b.jpg",
                "dog/a.PNG",
                "cat/c.webp",
                "cat/notes.txt",
                ".DS_Store",
            ],
        );
        let f = ImageFolder::open(&root).unwrap();
        assert_eq!(f.classes, ["cat", "dog"]);
        assert_eq!(f.counts(), [1, 2]);
        assert_eq!(f.items[1].0.file_name().unwrap(), "a.PNG");
        assert_eq!(f.skipped.len(), 1);
        assert!(f.skipped[0].0.ends_with("notes.txt"));
        std::fs::remove_dir_all(root).ok();
    }

    #[test]
    fn a_list_of_files_and_labels() {
        let root = tree(
            "list",
            &["img/a.png", "img/b.png", "img/c.jpg", "img/d.txt"],
        );
        let list = root.join("labels.csv");
        std::fs::write(
            &list,
            "file,label\nimg/a.png,dog\nimg/b.png,cat\n\nimg/c.jpg,dog\nimg/d.txt,cat\n",
        )
        .unwrap();
        let f = ImageFolder::open_any(&list).unwrap();
        assert_eq!(f.classes, ["cat", "dog"]);
        assert_eq!(f.counts(), [1, 2]);
        assert!(f.items[0].0.ends_with("img/a.png"));
        assert_eq!(f.skipped.len(), 1);
        let jsonl = root.join("labels.jsonl");
        std::fs::write(
            &jsonl,
            "{\"file\": \"img/a.png\", \"label\": \"dog\"}\n{\"path\": \"img/b.png\", \"label\": \"cat\"}\n",
        )
        .unwrap();
        let f = ImageFolder::open_any(&jsonl).unwrap();
        assert_eq!(
            (f.classes.clone(), f.counts()),
            (vec!["cat".into(), "dog".into()], vec![1, 1])
        );
        std::fs::write(&jsonl, "{\"file\": \"img/a.png\"}\n").unwrap();
        let err = ImageFolder::open_any(&jsonl).unwrap_err().to_string();
        assert!(err.contains("line 1") && err.contains("label"), "{err}");
        std::fs::write(&list, "img/a.png,dog\nimg/b.png\n").unwrap();
        let err = ImageFolder::open_any(&list).unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
        std::fs::write(&list, "img/a.png,dog\nimg/c.jpg,dog\n").unwrap();
        let err = ImageFolder::open_any(&list).unwrap_err().to_string();
        assert!(err.contains("at least 2"), "{err}");
        std::fs::remove_dir_all(root).ok();
    }

    #[test]
    fn empty_class_and_single_class_are_refused_by_name() {
        let root = tree("empty", &["dog/a.png", "cat/readme.md"]);
        let err = ImageFolder::open(&root).unwrap_err().to_string();
        assert!(err.contains("cat") && err.contains("no images"), "{err}");
        std::fs::remove_dir_all(root).ok();
        let root = tree("single", &["dog/a.png"]);
        let err = ImageFolder::open(&root).unwrap_err().to_string();
        assert!(err.contains("at least 2"), "{err}");
        std::fs::remove_dir_all(root).ok();
    }
}
