//! Which DLQ records a command acts on: partition, offset range and error category.

use orderflow_contracts::dead_letter::DlqCategory;

use super::error::{DeadLetterError, Result};
use super::record::DlqRecord;

/// The categories the consumer writes, from its own enum so a rename follows.
pub fn known_categories() -> Vec<&'static str> {
    DlqCategory::ALL
        .into_iter()
        .map(DlqCategory::as_str)
        .collect()
}

/// Checks `--category` against the categories the consumer writes, so a typo is an
/// error instead of an empty selection.
pub fn parse_category(raw: &str) -> Result<String> {
    let given = raw.trim();
    let known = known_categories();
    if known.contains(&given) {
        Ok(given.to_owned())
    } else {
        Err(DeadLetterError::UnknownCategory {
            given: raw.to_owned(),
            known: known.join(", "),
        })
    }
}

/// Filters on DLQ records; an unset field matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Only this DLQ partition.
    pub partition: Option<i32>,
    /// Only DLQ offsets at or after this one (in every selected partition).
    pub from_offset: Option<i64>,
    /// Only DLQ offsets at or before this one (inclusive).
    pub to_offset: Option<i64>,
    /// Only records whose `dlq-error-category` equals this.
    pub category: Option<String>,
}

impl Selection {
    /// Rejects ranges that can select nothing by construction.
    pub fn validate(&self) -> Result<()> {
        if let Some(partition) = self.partition
            && partition < 0
        {
            return Err(DeadLetterError::InvalidArguments(format!(
                "--partition must be 0 or more, got {partition}"
            )));
        }
        for (flag, offset) in [
            ("--from-offset", self.from_offset),
            ("--to-offset", self.to_offset),
        ] {
            if let Some(offset) = offset
                && offset < 0
            {
                return Err(DeadLetterError::InvalidArguments(format!(
                    "{flag} must be 0 or more, got {offset}"
                )));
            }
        }
        if let (Some(from), Some(to)) = (self.from_offset, self.to_offset)
            && from > to
        {
            return Err(DeadLetterError::InvalidArguments(format!(
                "--from-offset {from} is after --to-offset {to}"
            )));
        }
        Ok(())
    }

    /// Whether `record` is selected.
    pub fn matches(&self, record: &DlqRecord) -> bool {
        self.partition.is_none_or(|p| record.partition == p)
            && self.from_offset.is_none_or(|from| record.offset >= from)
            && self.to_offset.is_none_or(|to| record.offset <= to)
            && self
                .category
                .as_deref()
                .is_none_or(|wanted| record.category().as_deref() == Some(wanted))
    }
}

#[cfg(test)]
mod tests {
    use orderflow_contracts::dead_letter::headers;

    use super::*;
    use crate::dead_letter::record::RecordHeader;

    fn record(partition: i32, offset: i64, category: Option<&str>) -> DlqRecord {
        DlqRecord {
            partition,
            offset,
            key: None,
            value: None,
            headers: category
                .map(|c| vec![RecordHeader::text(headers::ERROR_CATEGORY, c)])
                .unwrap_or_default(),
        }
    }

    #[test]
    fn every_filter_narrows_and_unset_filters_match_all() {
        let all = Selection::default();
        assert!(all.matches(&record(3, 99, None)));

        let narrow = Selection {
            partition: Some(1),
            from_offset: Some(10),
            to_offset: Some(20),
            category: Some("validation".into()),
        };
        assert!(narrow.matches(&record(1, 10, Some("validation"))));
        assert!(narrow.matches(&record(1, 20, Some("validation"))));
        assert!(!narrow.matches(&record(0, 15, Some("validation"))));
        assert!(!narrow.matches(&record(1, 9, Some("validation"))));
        assert!(!narrow.matches(&record(1, 21, Some("validation"))));
        assert!(!narrow.matches(&record(1, 15, Some("processing"))));
        assert!(!narrow.matches(&record(1, 15, None)));
    }

    #[test]
    fn categories_are_checked_against_the_consumer_list() {
        assert_eq!(
            parse_category("retries-exhausted").unwrap(),
            "retries-exhausted"
        );
        let err = parse_category("validaton").unwrap_err();
        assert!(err.to_string().contains("validation"), "{err}");
    }

    #[test]
    fn impossible_ranges_are_rejected() {
        let backwards = Selection {
            from_offset: Some(5),
            to_offset: Some(4),
            ..Selection::default()
        };
        assert!(
            backwards
                .validate()
                .unwrap_err()
                .to_string()
                .contains("after")
        );
        let negative = Selection {
            partition: Some(-1),
            ..Selection::default()
        };
        assert!(negative.validate().is_err());
        assert!(Selection::default().validate().is_ok());
    }
}
