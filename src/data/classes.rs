//! The one rule for class order, whatever the labels came from (a folder's subfolders, a list
//! file, a table's label column, the page's items): the distinct names sorted numerically when
//! every one is a number ("2" < "9" < "10"), else as strings; a label's index is its place in
//! that order.

use std::cmp::Ordering;

/// The distinct `names`, in class order.
pub fn order<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> Vec<String> {
    let mut classes: Vec<String> = names.into_iter().map(|s| s.as_ref().to_string()).collect();
    classes.sort();
    classes.dedup();
    let numbers: Option<Vec<f64>> = classes
        .iter()
        .map(|c| c.trim().parse::<f64>().ok().filter(|v| v.is_finite()))
        .collect();
    if let Some(numbers) = numbers {
        let mut pairs: Vec<(f64, String)> = numbers.into_iter().zip(classes).collect();
        // Equal numbers ("1" and "1.0") keep the string order between them.
        pairs.sort_by(|a, b| {
            a.0.partial_cmp(&b.0)
                .unwrap_or(Ordering::Equal)
                .then(a.1.cmp(&b.1))
        });
        classes = pairs.into_iter().map(|(_, c)| c).collect();
    }
    classes
}

/// Each of `labels` as its index in `classes` (from [`order`]); `None` for a name not there.
pub fn index_of(classes: &[String], label: &str) -> Option<u32> {
    classes.iter().position(|c| c == label).map(|i| i as u32)
}

/// Class `i` of data labelled in `data_classes`, as the index of the same name among the
/// model's `labels`: data whose labels the model does not have is an error naming them.
pub fn remap(data_classes: &[String], labels: &[String]) -> crate::Result<Vec<u32>> {
    let missing: Vec<&String> = data_classes
        .iter()
        .filter(|c| !labels.contains(c))
        .collect();
    if !missing.is_empty() {
        return Err(crate::Error::Data(format!(
            "label(s) {missing:?} are not among the model's labels {labels:?}"
        )));
    }
    Ok(data_classes
        .iter()
        .map(|c| index_of(labels, c).expect("checked"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_sort_as_numbers_and_names_as_strings() {
        assert_eq!(order(["10", "2", "9", "2"]), ["2", "9", "10"]);
        assert_eq!(order(["-1", "0.5", "1e1", "3"]), ["-1", "0.5", "3", "1e1"]);
        assert_eq!(order(["cat", "Dog", "10", "2"]), ["10", "2", "Dog", "cat"]);
        assert_eq!(order(["nan", "1"]), ["1", "nan"]);
    }

    #[test]
    fn remap_names_missing_labels() {
        let labels: Vec<String> = order(["2", "9", "10"]);
        let data: Vec<String> = order(["10", "2"]);
        assert_eq!(remap(&data, &labels).unwrap(), [0, 2]);
        let err = remap(&order(["7"]), &labels).unwrap_err().to_string();
        assert!(err.contains("\"7\""), "{err}");
    }
}
