//! Jobs of different thread counts trained at once in one process (Python's fits in two
//! threads) give the weights each gives alone: a job's thread count is its own, not the
//! process's (a probe, 2026-12-07: each changed the other's weights).

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use lstm::tasks::settings::Settings;
use lstm::{Job, Task};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data")
        .join(name)
}

/// A small run of `task` on `threads` threads (classifiers train a further model while the
/// job is built: two of them).
fn settings(task: Task, threads: usize, dir: &Path) -> Settings {
    let mut s = Settings::defaults(task);
    std::fs::create_dir_all(dir).unwrap();
    match task {
        Task::Text => {
            let text = std::fs::read_to_string(data("tinyshakespeare.txt")).unwrap();
            let p = dir.join(format!("small-{threads}.txt"));
            std::fs::write(&p, &text[..40_000]).unwrap();
            s.data = Some(p.display().to_string());
            (s.hidden, s.layers, s.seq_len, s.batch) = (64, 2, 32, 16);
        }
        _ => {
            s.data = Some(data("movie_review_sentiment.tsv").display().to_string());
            (s.hidden, s.embedding, s.batch, s.members) = (32, 16, 32, 2);
        }
    }
    (s.minutes, s.epochs, s.steps) = (None, None, Some(40));
    s.threads = threads;
    s
}

fn train(task: Task, threads: usize, dir: &Path) -> Vec<Vec<f32>> {
    let out = dir.join(format!("{task}-{threads}"));
    let _ = std::fs::remove_dir_all(&out);
    Job::new(task, settings(task, threads, dir), out.clone())
        .unwrap()
        .train(&|_, _, _| Ok(()), &AtomicBool::new(false), &mut |_| {})
        .unwrap();
    let l = lstm::load(&out).unwrap();
    std::iter::once(&l.model)
        .chain(&l.members)
        .map(|m| m.store.values.clone())
        .collect()
}

#[test]
fn jobs_of_other_thread_counts_trained_at_once_train_as_alone() {
    let dir = std::env::temp_dir().join(format!("lstm-concurrent-jobs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for task in [Task::Text, Task::Classify] {
        let alone: Vec<_> = [1, 2].map(|t| train(task, t, &dir.join("alone"))).into();
        let d = dir.join("together");
        let (one, two) = std::thread::scope(|scope| {
            let a = scope.spawn(|| train(task, 1, &d));
            let b = scope.spawn(|| train(task, 2, &d));
            (a.join().unwrap(), b.join().unwrap())
        });
        // the counts do give other weights, so that the test can tell
        assert_ne!(alone[0], alone[1], "{task}");
        assert!(
            one == alone[0],
            "{task}: the 1-thread job beside a 2-thread one"
        );
        assert!(
            two == alone[1],
            "{task}: the 2-thread job beside a 1-thread one"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
