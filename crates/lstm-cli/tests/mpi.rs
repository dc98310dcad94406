//! `mpirun -np 2 lstm train ...` (feature `mpi`; `.ci/run` installs OpenMPI and runs these with
//! `cargo test --release -p lstm-cli --features mpi --test mpi`): the weights of one process
//! with the same global batch, one rank writing, a killed rank ending the run with the last
//! checkpoint intact, ranks with different settings refused, and a resume.
#![cfg(feature = "mpi")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn lstm() -> &'static str {
    env!("CARGO_BIN_EXE_lstm")
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lstm-mpi-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn text(dir: &Path) -> PathBuf {
    let p = dir.join("t.txt");
    let src = include_str!("../../../data/tinyshakespeare.txt");
    std::fs::write(&p, &src[..40_000]).unwrap();
    p
}

fn mpirun(np: usize, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new("mpirun");
    c.args([
        "--allow-run-as-root",
        "--oversubscribe",
        "-np",
        &np.to_string(),
    ]);
    for (k, v) in env {
        c.args(["-x", &format!("{k}={v}")]);
    }
    c.arg(lstm()).args(args);
    c.output().expect("mpirun (OpenMPI) is installed")
}

fn train_args<'a>(data: &'a str, out: &'a str, steps: &'a str) -> Vec<&'a str> {
    vec![
        "train",
        "text",
        "--data",
        data,
        "--steps",
        steps,
        "--hidden",
        "32",
        "--layers",
        "2",
        "--batch",
        "8",
        "--seq-len",
        "32",
        "--dropout",
        "0",
        "--threads",
        "1",
        "--out",
        out,
        "--quiet",
    ]
}

fn weights(dir: &Path) -> Vec<f32> {
    lstm::load(dir).unwrap().model.store.values
}

#[test]
fn two_ranks_end_with_the_weights_of_one_process() {
    let d = tmp("same");
    let data = text(&d);
    let (a, b) = (d.join("one"), d.join("two"));
    let (ds, as_, bs) = (
        data.to_str().unwrap(),
        a.to_str().unwrap(),
        b.to_str().unwrap(),
    );
    let one = Command::new(lstm())
        .args(train_args(ds, as_, "30"))
        .output()
        .unwrap();
    assert!(
        one.status.success(),
        "{}",
        String::from_utf8_lossy(&one.stderr)
    );
    // not --quiet: rank 0 reports each validation (a rank's standard output is a terminal
    // under OpenMPI, its standard error a pipe: the progress bar hid them)
    let mut args = train_args(ds, bs, "30");
    args.retain(|a| *a != "--quiet");
    args.extend(["--eval-every", "10"]);
    let two = mpirun(2, &args, &[]);
    assert!(
        two.status.success(),
        "{}",
        String::from_utf8_lossy(&two.stderr)
    );
    let (wa, wb) = (weights(&a), weights(&b));
    let worst = wa
        .iter()
        .zip(&wb)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-4, "weights differ from one process by {worst}");
    // one rank reported and wrote
    let stdout = String::from_utf8_lossy(&two.stdout);
    assert_eq!(stdout.matches("done:").count(), 1, "{stdout}");
    assert!(stdout.contains("2 ranks"), "{stdout}");
    for step in [10, 20, 30] {
        let line = format!("step {step}: validation loss");
        assert_eq!(stdout.matches(&line).count(), 1, "{stdout}");
    }
    // another command would run whole on each rank: refused on each, before it writes
    let gen = mpirun(2, &["generate", "--model", bs, "--length", "20"], &[]);
    assert!(!gen.status.success());
    let err = String::from_utf8_lossy(&gen.stderr);
    assert!(err.contains("only `lstm train` runs across them"), "{err}");
    assert!(
        gen.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&gen.stdout)
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_killed_rank_ends_the_run_and_the_last_checkpoint_loads() {
    let d = tmp("kill");
    let data = text(&d);
    let out = d.join("m");
    let mut args = train_args(data.to_str().unwrap(), out.to_str().unwrap(), "100000");
    args.extend(["--save-every", "5"]);
    let t = Instant::now();
    let r = mpirun(2, &args, &[("LSTM_TEST_MPI_ABORT", "1:12")]);
    assert!(!r.status.success());
    assert!(
        t.elapsed() < Duration::from_secs(60),
        "the run took {:?} to end",
        t.elapsed()
    );
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("rank 1") && err.contains("signal 9"), "{err}");
    let l = lstm::load(&out).expect("the last checkpoint loads");
    assert_eq!(l.state.step, 10);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn ranks_with_different_settings_are_refused_and_a_run_resumes() {
    let d = tmp("refuse");
    let data = text(&d);
    let out = d.join("m");
    let (ds, os) = (data.to_str().unwrap(), out.to_str().unwrap());
    // MPMD: rank 0 and rank 1 with different hidden sizes
    let mut c = Command::new("mpirun");
    c.args(["--allow-run-as-root", "--oversubscribe", "-np", "1", lstm()])
        .args(train_args(ds, os, "10"))
        .args([":", "-np", "1", lstm()])
        .args(
            train_args(ds, os, "10")
                .iter()
                .map(|a| if *a == "32" { "16" } else { a }),
        );
    let r = c.output().unwrap();
    assert!(!r.status.success());
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("different settings") && !err.contains("training stopped"),
        "{err}"
    );
    assert!(!out.join("config.json").exists());
    // a run of 10 steps, resumed to 20 with the same two ranks
    let r = mpirun(2, &train_args(ds, os, "10"), &[]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let r = mpirun(2, &["train", "--resume", os, "--steps", "20"], &[]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(lstm::load(&out).unwrap().state.step, 20);
    // said by one rank, as the rest of the run is (each rank said it)
    let said = String::from_utf8_lossy(&r.stdout);
    assert_eq!(said.matches("resuming").count(), 1, "{said}");
    // each rank with its machine's threads: resumed to 24 with 1 and 2
    let mut c = Command::new("mpirun");
    let resume = |threads: &'static str| {
        [
            "train",
            "--resume",
            os,
            "--steps",
            "24",
            "--quiet",
            "--threads",
            threads,
        ]
    };
    c.args(["--allow-run-as-root", "--oversubscribe", "-np", "1", lstm()])
        .args(resume("1"))
        .args([":", "-np", "1", lstm()])
        .args(resume("2"));
    let r = c.output().unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(lstm::load(&out).unwrap().state.step, 24);
    let _ = std::fs::remove_dir_all(&d);
}

/// A run resumed on the same ranks is the run it continues, with dropout and shares of
/// different sizes (3 ranks, a batch of 8: 2, 3 and 3 rows): each rank's masks come from a
/// place set by the step (they came from where rank 0's stream was, 0.03 apart by 20 steps).
#[test]
fn a_resume_with_dropout_and_uneven_shares_continues_the_same_run() {
    let d = tmp("resume-dropout");
    let data = text(&d);
    let ds = data.to_str().unwrap();
    let (full, half) = (d.join("full"), d.join("half"));
    let (fs, hs) = (full.to_str().unwrap(), half.to_str().unwrap());
    let args = |out: &str, steps: &str| -> Vec<String> {
        let mut a: Vec<String> = train_args(ds, out, steps)
            .into_iter()
            .map(String::from)
            .collect();
        let i = a.iter().position(|x| x == "--dropout").unwrap();
        a[i + 1] = "0.3".into();
        a
    };
    let run = |a: &[String]| {
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let r = mpirun(3, &a, &[]);
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    };
    run(&args(fs, "20"));
    run(&args(hs, "10"));
    run(&["train", "--resume", hs, "--steps", "20", "--quiet"].map(String::from));
    let (a, b) = (weights(&full), weights(&half));
    let worst = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-6, "the resumed run's weights differ by {worst}");
    let _ = std::fs::remove_dir_all(&d);
}

/// `mpirun` of two programs (MPMD: rank 0 runs `a`, rank 1 `b`), ended after two minutes: a
/// rank waiting alone for the other would otherwise hang the test.
fn mpmd(a: &[&str], b: &[&str]) -> Output {
    Command::new("timeout")
        .args(["120", "mpirun", "--allow-run-as-root", "--oversubscribe"])
        .args(["-np", "1", lstm()])
        .args(a)
        .args([":", "-np", "1", lstm()])
        .args(b)
        .output()
        .unwrap()
}

#[test]
fn ranks_that_see_different_files_or_steps_are_refused() {
    let d = tmp("files");
    let data = text(&d);
    let ds = data.to_str().unwrap();
    // the same text under another name: the same data
    let copy = d.join("copy.txt");
    std::fs::copy(&data, &copy).unwrap();
    // the same length and characters, other contents (the first batches may still agree)
    let other = d.join("other.txt");
    let t = std::fs::read_to_string(&data).unwrap();
    std::fs::write(&other, format!("{}{}", &t[20_000..], &t[..20_000])).unwrap();
    let out = d.join("m");
    let os = out.to_str().unwrap();
    let r = mpmd(
        &train_args(ds, os, "4"),
        &train_args(copy.to_str().unwrap(), os, "4"),
    );
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let out2 = d.join("m2");
    let os2 = out2.to_str().unwrap();
    let r = mpmd(
        &train_args(ds, os2, "4"),
        &train_args(other.to_str().unwrap(), os2, "4"),
    );
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        !r.status.success() && err.contains("different settings, data files"),
        "{err}"
    );
    assert!(!out2.join("config.json").exists());
    // checkpoints at steps 4 and 8, one of them at the end of its budget: refused on both
    // ranks (the spent one used to return alone and leave the other waiting)
    let later = d.join("later");
    copy_dir(&out, &later);
    let r = mpirun(
        2,
        &[
            "train",
            "--resume",
            later.to_str().unwrap(),
            "--steps",
            "8",
            "--quiet",
        ],
        &[],
    );
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let resume = |dir: &Path| {
        vec![
            "train".to_string(),
            "--resume".into(),
            dir.to_str().unwrap().into(),
            "--steps".into(),
            "8".into(),
            "--quiet".into(),
        ]
    };
    let (a, b) = (resume(&later), resume(&out));
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let b: Vec<&str> = b.iter().map(String::as_str).collect();
    let r = mpmd(&a, &b);
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code().map(|c| c != 124), Some(true), "hung: {err}");
    assert!(
        !r.status.success() && err.contains("different checkpoints"),
        "{err}"
    );
    assert_eq!(lstm::load(&out).unwrap().state.step, 4);
    let _ = std::fs::remove_dir_all(&d);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}
