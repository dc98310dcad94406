//! A classifier of several models in one directory (`Settings::members`): each further model
//! is the model a run of its own seed trains, the directory keeps them, and prediction and
//! evaluation average their class probabilities; a directory of one model (and one saved
//! before `members` existed) predicts exactly as before.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use lstm::data::labelled::{self, Examples};
use lstm::tasks::classify;
use lstm::tasks::job::{self, EvalOptions, EvalReport, Job};
use lstm::tasks::modeldir::{self, Loaded, Task};
use lstm::tasks::settings::Settings;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lstm-members-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A small two-class TSV: sentences of "good" words or "bad" words.
fn write_data(dir: &Path) -> PathBuf {
    let good = ["fine", "great", "lovely", "warm", "bright"];
    let bad = ["dull", "awful", "cold", "grim", "flat"];
    let mut tsv = String::from("text\tlabel\n");
    for i in 0..60 {
        let (words, label) = if i % 2 == 0 {
            (&good, "pos")
        } else {
            (&bad, "neg")
        };
        let text: Vec<&str> = (0..3 + i % 4).map(|k| words[(i + 2 * k) % 5]).collect();
        // each text once: a repeated one would be named as a validation row training read
        tsv.push_str(&format!("film {i} was {}\t{label}\n", text.join(" ")));
    }
    let p = dir.join("d.tsv");
    std::fs::write(&p, tsv).unwrap();
    p
}

fn settings(data: &Path, members: usize, seed: u64) -> Settings {
    let mut s = Settings::defaults(Task::Classify);
    s.data = Some(data.display().to_string());
    s.embedding = 6;
    s.hidden = 5;
    s.batch = 8;
    s.min_count = 1;
    s.epochs = None;
    s.steps = Some(6);
    s.eval_every = 3;
    s.threads = 1;
    s.seed = seed;
    s.members = members;
    s
}

fn train(s: Settings, out: &Path) -> Vec<String> {
    let mut job = Job::new(Task::Classify, s, out.to_path_buf()).unwrap();
    let notes = job.notes.clone();
    job.train(&|_, _, _| Ok(()), &AtomicBool::new(false), &mut |_| {})
        .unwrap();
    notes
}

fn texts() -> Vec<String> {
    [
        "the film was great",
        "the film was grim and cold",
        "lovely",
        "unheard words here",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn tokens(l: &Loaded, texts: &[String]) -> Vec<Vec<u32>> {
    labelled::encode_texts(
        l.meta.vocab.as_ref().unwrap(),
        texts,
        l.meta.settings.max_len,
    )
}

#[test]
fn members_are_the_runs_of_their_seeds_and_their_probabilities_are_averaged() {
    let dir = tmp("mean");
    let data = write_data(&dir);
    let notes = train(settings(&data, 3, 11), &dir.join("m"));
    assert!(
        notes[0].starts_with("3 models from different seeds, 6 steps each"),
        "{notes:?}"
    );
    let mut l = modeldir::load(&dir.join("m")).unwrap();
    assert_eq!(l.members.len(), 2);
    assert!(dir.join("m/member2.safetensors").is_file());
    assert!(!dir.join("m/member3.safetensors").exists());

    // member k is what a one-model run of seed member_seed(11, k) trains
    for k in 1..3 {
        let seed = job::member_seed(11, k);
        let out = dir.join(format!("single{k}"));
        train(settings(&data, 1, seed), &out);
        let single = modeldir::load(&out).unwrap();
        assert!(single.members.is_empty());
        assert_eq!(
            single.model.store.values,
            l.members[k - 1].store.values,
            "member {k}"
        );
    }
    // ... and the models differ from each other
    assert_ne!(l.model.store.values, l.members[0].store.values);

    // the probabilities: the mean of each model's, computed one model at a time
    let t = texts();
    let tok = tokens(&l, &t);
    let mut each = vec![classify::predict(&mut l.model, &tok, 3).unwrap()];
    for m in &mut l.members {
        each.push(classify::predict(m, &tok, 3).unwrap());
    }
    let preds = job::classify(&mut l, &t).unwrap();
    let mut differs = false;
    for (i, p) in preds.iter().enumerate() {
        for c in 0..2 {
            let mean = each.iter().map(|e| e[i][c] as f64).sum::<f64>() / 3.0;
            assert!(
                (p.probabilities[c] as f64 - mean).abs() < 1e-6,
                "text {i} class {c}"
            );
            differs |= (each[0][i][c] - each[1][i][c]).abs() > 1e-4;
        }
        let best = if p.probabilities[1] > p.probabilities[0] {
            1
        } else {
            0
        };
        assert_eq!(p.label, l.meta.labels.as_ref().unwrap()[best]);
    }
    assert!(
        differs,
        "the members must not predict alike, or the test shows nothing"
    );

    // evaluation scores the mean probabilities: accuracy of their argmax, their cross-entropy
    let report = job::evaluate(&mut l, &data, &EvalOptions::default()).unwrap();
    let EvalReport::Classify { eval, .. } = report else {
        panic!("a classify report")
    };
    let d = labelled::read_labelled(&data, "text", "label").unwrap();
    let labels = l.meta.labels.clone().unwrap();
    let ys: Vec<usize> = d
        .labels
        .iter()
        .map(|y| labels.iter().position(|x| x == y).unwrap())
        .collect();
    let probs: Vec<Vec<f32>> = job::classify(&mut l, &d.texts)
        .unwrap()
        .into_iter()
        .map(|p| p.probabilities)
        .collect();
    let correct = probs
        .iter()
        .zip(&ys)
        .filter(|(p, &y)| (p[1] > p[0]) == (y == 1))
        .count();
    let loss = probs
        .iter()
        .zip(&ys)
        .map(|(p, &y)| -(p[y] as f64).ln())
        .sum::<f64>()
        / ys.len() as f64;
    assert_eq!(eval.n, 60);
    assert_eq!(eval.accuracy, correct as f64 / 60.0);
    assert!(
        (eval.loss as f64 - loss).abs() < 1e-5,
        "{} against {loss}",
        eval.loss
    );

    // a whole save (Python's Model.save) keeps the members
    let again = dir.join("again");
    modeldir::save_loaded(&again, &l).unwrap();
    let mut l2 = modeldir::load(&again).unwrap();
    assert_eq!(l2.members.len(), 2);
    let p2 = job::classify(&mut l2, &t).unwrap();
    for (a, b) in preds.iter().zip(&p2) {
        assert_eq!(a.probabilities, b.probabilities);
    }

    // a missing member is named
    std::fs::remove_file(dir.join("m/member2.safetensors")).unwrap();
    let e = modeldir::load(&dir.join("m")).unwrap_err().to_string();
    assert!(
        e.contains("member2.safetensors") && e.contains("missing"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn one_model_and_a_directory_saved_before_members_predict_as_one_model() {
    let dir = tmp("old");
    let data = write_data(&dir);
    let out = dir.join("m");
    let notes = train(settings(&data, 1, 3), &out);
    assert!(notes.is_empty(), "{notes:?}");
    // as a directory saved before `members`: no such key, no manifest to vouch for the edit
    let cfg = out.join("config.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
    assert_eq!(v["settings"]["members"], 1);
    v["settings"].as_object_mut().unwrap().remove("members");
    std::fs::write(&cfg, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    std::fs::remove_file(out.join(modeldir::MANIFEST)).unwrap();
    let mut l = modeldir::load(&out).unwrap();
    assert_eq!(l.meta.settings.members, 1);
    assert!(l.members.is_empty());

    let t = texts();
    let tok = tokens(&l, &t);
    let alone = classify::predict(&mut l.model, &tok, 64).unwrap();
    let preds = job::classify(&mut l, &t).unwrap();
    for (p, a) in preds.iter().zip(&alone) {
        assert_eq!(&p.probabilities, a, "bit for bit");
    }
    let d = labelled::read_labelled(&data, "text", "label").unwrap();
    let labels = l.meta.labels.clone().unwrap();
    let ex = Examples {
        tokens: tokens(&l, &d.texts),
        labels: d
            .labels
            .iter()
            .map(|y| labels.iter().position(|x| x == y).unwrap() as u32)
            .collect(),
    };
    let direct = classify::evaluate(&mut l.model, &ex, 64, 2).unwrap();
    let EvalReport::Classify { eval, .. } =
        job::evaluate(&mut l, &data, &EvalOptions::default()).unwrap()
    else {
        panic!("a classify report")
    };
    assert_eq!((eval.accuracy, eval.loss), (direct.accuracy, direct.loss));
    assert_eq!(eval.confusion, direct.confusion);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn members_out_of_range_and_a_minutes_budget() {
    let mut s = Settings::defaults(Task::Classify);
    assert!(s.members > 1, "the default averages several models");
    s.members = 0;
    let e = s.validate().unwrap_err().to_string();
    assert!(e.contains("members (--members) must be at least 1"), "{e}");
    s.members = 101;
    let e = s.validate().unwrap_err().to_string();
    assert!(e.contains("members (--members) must be at most 100"), "{e}");

    // a time budget alone trains one model, says so, and saves members = 1
    let dir = tmp("minutes");
    let data = write_data(&dir);
    let mut s = settings(&data, 3, 1);
    s.steps = None;
    s.minutes = Some(0.001);
    let job = Job::new(Task::Classify, s, dir.join("m")).unwrap();
    assert!(job.members.is_empty());
    assert_eq!(job.meta.settings.members, 1);
    assert!(job.notes[0].contains("--minutes budget"), "{:?}", job.notes);
    let _ = std::fs::remove_dir_all(&dir);
}
