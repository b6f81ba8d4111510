//! The store survives SIGKILL in the middle of a stream of durable writes: `kakou store soak`
//! prints each passage id once its transaction committed; the test kills it mid-stream, reopens
//! the file, checks it and finds every acknowledged passage (and its outbox message).
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

use kakou_host::store::{PassageIndex, Store};

/// Starts a soak writer and reads `ack` committed ids, kills it with SIGKILL, and returns every
/// id it printed in full before it died.
fn soak_and_kill(path: &std::path::Path, start: u64, ack: usize) -> Vec<String> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kakou"))
        .args(["store", "soak"])
        .arg(path)
        .args(["--count", "100000000", "--start", &start.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start kakou store soak");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut ids = Vec::new();
    let mut line = String::new();
    while ids.len() < ack {
        line.clear();
        let n = out.read_line(&mut line).unwrap();
        assert!(n > 0, "the writer stopped after {} ids", ids.len());
        ids.push(line.trim_end().to_owned());
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(9),
        "killed mid-stream, not finished: {status:?}"
    );
    // Lines already printed before the kill are acknowledged too; a line cut short is not.
    loop {
        line.clear();
        if out.read_line(&mut line).unwrap() == 0 || !line.ends_with('\n') {
            break;
        }
        ids.push(line.trim_end().to_owned());
    }
    ids
}

#[test]
fn sigkill_mid_stream_loses_no_acknowledged_passage() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kakou.redb");
    let mut acknowledged: Vec<String> = Vec::new();
    for round in 0..3u64 {
        let ids = soak_and_kill(&path, round * 1_000_000, 60 + 25 * round as usize);
        assert!(ids.len() >= 60);
        acknowledged.extend(ids);

        // Reopen for writing (redb recovers the file), as the restarted daemon would.
        let store = Store::open(&path).unwrap();
        let snap = store.snapshot().unwrap();
        let report = snap.check().unwrap();
        assert!(report.is_clean(), "after SIGKILL: {:#?}", report.problems);
        for id in &acknowledged {
            let rec = snap
                .passage(id)
                .unwrap()
                .unwrap_or_else(|| panic!("acknowledged passage {id} is missing after the crash"));
            // Its index entries were committed with it.
            let lane = &rec.passage.lane.id;
            let at = rec.passage.started_ms;
            let found = snap.passage_ids(PassageIndex::Lane, lane, at, at).unwrap();
            assert!(
                found.iter().any(|(_, i)| i == id),
                "{id} not in the lane index"
            );
        }
        // At most the transaction in flight committed without being acknowledged.
        let count = snap.passage_count().unwrap();
        let known: HashSet<&String> = acknowledged.iter().collect();
        assert!(
            count as usize >= known.len() && count as usize <= known.len() + round as usize + 1,
            "{count} passages for {} acknowledged",
            known.len()
        );
        // Each committed passage queued its outbox message in the same transaction.
        assert_eq!(snap.outbox_len().unwrap(), count);
        drop(snap);
        drop(store);
    }

    // The command-line check agrees, and verifies redb's page checksums too.
    let out = Command::new(env!("CARGO_BIN_EXE_kakou"))
        .args(["store", "check"])
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("pages     checksums verified"), "{stdout}");
    assert!(stdout.ends_with("ok\n"), "{stdout}");
}
