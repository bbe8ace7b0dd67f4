//! A sequence with a truncated PGM and a file that is not a PGM: each is reported by name,
//! and every other frame is processed and keeps its index.

mod common;

use common::{centerlines, replay, synth, Rx};

#[test]
fn bad_files_are_named_skipped_and_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let frames = 12u32;
    synth(dir.path(), 9, frames, 128);
    let truncated = dir.path().join("frames/000004.pgm");
    let bytes = std::fs::read(&truncated).expect("frame 4");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).expect("truncate frame 4");
    let not_pgm = dir.path().join("frames/000007.pgm");
    std::fs::write(&not_pgm, b"this is a text file, not an image\n").expect("overwrite frame 7");

    let (rx, listening) = Rx::start(&["--udp", "127.0.0.1:0", "--idle-exit", "2"]);
    let addr = listening.rsplit(' ').next().expect("address").to_string();
    let out = replay(&[dir.path().to_str().expect("utf-8 path"), "--udp", &addr, "--fast"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let (messages, _) = rx.finish();

    for (path, why) in [(&truncated, "truncated"), (&not_pgm, "not a")] {
        let line = stderr
            .lines()
            .find(|l| l.contains(&*path.to_string_lossy()))
            .unwrap_or_else(|| panic!("no error names {}: {stderr}", path.display()));
        assert!(line.to_lowercase().contains(why), "error for {} does not say {why:?}: {line}", path.display());
    }
    assert!(stderr.contains(", 2 bad,"), "the summary counts both bad files: {stderr}");

    let mut got: Vec<u64> = centerlines(&messages).iter().map(|m| m["frame"].as_u64().expect("frame")).collect();
    got.sort_unstable();
    let want: Vec<u64> = (0..u64::from(frames)).filter(|f| *f != 4 && *f != 7).collect();
    assert_eq!(got, want);
}
