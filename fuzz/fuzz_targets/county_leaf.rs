//! Untrusted county log leaves (checkpoint rounds and calendar tables,
//! FORMAT.md § 14.4, § 19): decoding must never panic, and a calendar
//! table that decodes must re-encode to the same bytes (one reading per
//! leaf) and fold under the version rules.
#![no_main]

use gongkai_core::calendar::published::PublishedCalendars;
use gongkai_core::county::CountyRecord;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut calendars = PublishedCalendars::new();
    if let Ok(record) = CountyRecord::decode(data) {
        match record {
            CountyRecord::Checkpoints(_) => {}
            CountyRecord::Calendar(table) => {
                assert_eq!(table.encode(), data);
                let _ = calendars.apply(0, table);
                let _ = calendars.in_force();
            }
        }
    }
});
