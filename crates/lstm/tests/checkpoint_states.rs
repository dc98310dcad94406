//! Every state a model directory can be left in by a save killed at any instant, built one by
//! one: each must load as the previous checkpoint or the new one, whole, and the next save
//! must clean it up. (The end-to-end kill test in `lstm-cli/tests/robust.rs` hits these states
//! at random; this test visits all of them.)

use std::path::{Path, PathBuf};

use lstm::data::vocab::Vocab;
use lstm::model::{Head, InputKind, ModelConfig, SequenceModel};
use lstm::tasks::modeldir::{
    self, ModelMeta, Task, TrainingState, FORMAT, FORMAT_VERSION, MANIFEST, STAGING,
};
use lstm::tasks::settings::Settings;

struct Fixture {
    meta: ModelMeta,
    model: SequenceModel,
}

fn fixture() -> Fixture {
    let vocab = Vocab::chars_from("abcdef\n");
    let v = vocab.len();
    let model_cfg = ModelConfig {
        input: InputKind::OneHot { vocab: v },
        hidden_size: 6,
        head: Head::PerStep { outputs: v },
        ..Default::default()
    };
    let meta = ModelMeta {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        task: Task::Text,
        model: model_cfg.clone(),
        vocab: Some(vocab),
        labels: None,
        series: None,
        global: None,
        settings: Settings::defaults(Task::Text),
        seen: Vec::new(),
        texts_seen: None,
        label_values: None,
    };
    let model = SequenceModel::new(&model_cfg, 1).unwrap();
    Fixture { meta, model }
}

/// Trains one more step and saves the checkpoint of step `step` into `dir`.
fn next_checkpoint(f: &mut Fixture, dir: &Path, step: u64) {
    f.model
        .train_step_text(&[0, 1, 2, 3, 4, 5], &[1, 2, 3, 4, 5, 6], 2, 3)
        .unwrap();
    let state = TrainingState {
        step,
        ..Default::default()
    };
    modeldir::save(dir, &f.meta, &f.model, &state).unwrap();
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| {
            (
                e.file_name().to_string_lossy().to_string(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

fn write_all(dir: &Path, set: &[(String, Vec<u8>)]) {
    std::fs::create_dir_all(dir).unwrap();
    for (n, b) in set {
        std::fs::write(dir.join(n), b).unwrap();
    }
}

/// The step and weights a directory loads as.
fn loads_as(dir: &Path) -> (u64, Vec<f32>) {
    let l = modeldir::load(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    (l.state.step, l.model.store.values.clone())
}

fn fresh(base: &Path, name: &str) -> PathBuf {
    let d = base.join(name);
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn every_interrupted_save_loads_as_the_old_or_the_new_checkpoint() {
    let base = std::env::temp_dir().join(format!("lstm-ckpt-states-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let mut f = fixture();
    let (old_dir, new_dir) = (base.join("old"), base.join("new"));
    next_checkpoint(&mut f, &old_dir, 1);
    next_checkpoint(&mut f, &new_dir, 2);
    let (old, new) = (files(&old_dir), files(&new_dir));
    let (old_loaded, new_loaded) = (loads_as(&old_dir), loads_as(&new_dir));
    assert_ne!(old_loaded, new_loaded);
    let mut states = 0;

    // killed while staging: some new files written (the last one perhaps cut short), maybe a
    // temporary manifest, never the manifest itself -> the old checkpoint
    let staged: Vec<&(String, Vec<u8>)> = new.iter().filter(|(n, _)| n != MANIFEST).collect();
    for k in 0..=staged.len() {
        for cut in [false, true] {
            for tmp_manifest in [false, true] {
                let d = fresh(&base, "dir");
                write_all(&d, &old);
                let s = d.join(STAGING);
                std::fs::create_dir_all(&s).unwrap();
                for (i, (n, b)) in staged[..k].iter().enumerate() {
                    let b = if cut && i + 1 == k {
                        &b[..b.len() / 2]
                    } else {
                        &b[..]
                    };
                    std::fs::write(s.join(n), b).unwrap();
                }
                if tmp_manifest {
                    let m = &new.iter().find(|(n, _)| n == MANIFEST).unwrap().1;
                    std::fs::write(s.join(format!("{MANIFEST}.tmp123")), &m[..m.len() / 3])
                        .unwrap();
                }
                assert_eq!(loads_as(&d), old_loaded, "staged {k}, cut {cut}");
                next_checkpoint(&mut f, &d, 3);
                assert!(!s.exists());
                assert_eq!(loads_as(&d).0, 3);
                states += 1;
            }
        }
    }

    // killed while publishing: the complete staged set, its first j files moved (the
    // manifest last), or all moved with the empty staging directory left -> the new one
    let mut order: Vec<&(String, Vec<u8>)> = staged.clone();
    order.push(new.iter().find(|(n, _)| n == MANIFEST).unwrap());
    for j in 0..=order.len() {
        let d = fresh(&base, "dir");
        write_all(&d, &old);
        let s = d.join(STAGING);
        std::fs::create_dir_all(&s).unwrap();
        for (i, (n, b)) in order.iter().enumerate() {
            std::fs::write(if i < j { d.join(n) } else { s.join(n) }, b).unwrap();
        }
        assert_eq!(loads_as(&d), new_loaded, "published {j} of {}", order.len());
        // a save that finishes the publish and then fails leaves the new checkpoint whole
        // (finishing it removed the files it had already moved, Adam's second moments among
        // them)
        let failed = modeldir::save_with(&d, &f.meta, &f.model, &TrainingState::default(), &|_| {
            Err(lstm::Error::Config("a failing save".into()))
        });
        assert!(failed.is_err());
        assert_eq!(
            loads_as(&d),
            new_loaded,
            "published {j}, then a failed save"
        );
        // and the next save completes or discards it, leaving one clean checkpoint
        next_checkpoint(&mut f, &d, 3);
        assert!(!s.exists());
        assert_eq!(loads_as(&d).0, 3);
        states += 1;
    }
    assert!(states > 20);

    // a staged set whose manifest is damaged: the next save stops before moving anything
    // (it used to move the set in and then remove every file the old manifest listed), and
    // once the staging directory is removed, as the load's message says, the old checkpoint
    // loads
    let d = fresh(&base, "dir");
    write_all(&d, &old);
    let s = d.join(STAGING);
    write_all(&s, &staged.iter().map(|x| (*x).clone()).collect::<Vec<_>>());
    std::fs::write(s.join(MANIFEST), b"{ not json").unwrap();
    assert!(modeldir::save(&d, &f.meta, &f.model, &TrainingState::default()).is_err());
    std::fs::remove_dir_all(&s).unwrap();
    assert_eq!(loads_as(&d), old_loaded, "a damaged staged manifest");
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn a_version_1_directory_without_manifest_still_loads_and_resaves_as_version_2() {
    let base = std::env::temp_dir().join(format!("lstm-ckpt-v1-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let mut f = fixture();
    let d = base.join("m");
    next_checkpoint(&mut f, &d, 1);
    let want = loads_as(&d);
    // what version 1 wrote: no manifest, no `on_nonfinite`, format_version 1
    std::fs::remove_file(d.join(MANIFEST)).unwrap();
    let p = d.join("config.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    v["format_version"] = 1.into();
    v["settings"]
        .as_object_mut()
        .unwrap()
        .remove("on_nonfinite");
    std::fs::write(&p, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    let l = modeldir::load(&d).unwrap();
    assert_eq!((l.state.step, l.model.store.values.clone()), want);
    assert_eq!(l.meta.format_version, 1);
    let mut meta = l.meta.clone();
    meta.format_version = FORMAT_VERSION;
    modeldir::save(&d, &meta, &l.model, &l.state).unwrap();
    assert!(d.join(MANIFEST).exists());
    assert_eq!(modeldir::load(&d).unwrap().meta.format_version, 2);
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn a_model_loaded_for_use_has_the_weights_and_checks_every_file_but_keeps_no_moments() {
    let base = std::env::temp_dir().join(format!("lstm-ckpt-use-{}", std::process::id()));
    let d = fresh(&base, "m");
    let mut f = fixture();
    next_checkpoint(&mut f, &d, 1);
    next_checkpoint(&mut f, &d, 2);
    let full = modeldir::load(&d).unwrap();
    let used = modeldir::load_for_use(&d).unwrap();
    assert_eq!(used.model.store.values, full.model.store.values);
    assert_eq!(used.state.step, 2);
    assert!(full.model.optimizer.m.iter().any(|&x| x != 0.0));
    assert!(full.model.optimizer.v.iter().any(|&x| x != 0.0));
    assert!(used.model.optimizer.m.is_empty() && used.model.optimizer.v.is_empty());
    // a damaged moments file is refused all the same
    let p = d.join("optimizer_m.safetensors");
    let b = std::fs::read(&p).unwrap();
    std::fs::write(&p, &b[..b.len() - 8]).unwrap();
    let e = modeldir::load_for_use(&d).unwrap_err().to_string();
    assert!(e.contains("optimizer_m.safetensors"), "{e}");
    let _ = std::fs::remove_dir_all(&base);
}

/// A save of a model without second moments (SGD) over one with them, killed after the new
/// manifest moved in but before the old `optimizer_v.safetensors` was removed: the leftover
/// is not the checkpoint's (its manifest does not list it) and is ignored, not read and
/// refused for its shape (every command refused the directory).
#[test]
fn a_replaced_checkpoints_leftover_the_manifest_does_not_list_is_ignored() {
    let base = std::env::temp_dir().join(format!("lstm-ckpt-stale-{}", std::process::id()));
    let old = fresh(&base, "old");
    let mut big = fixture();
    big.meta.model.hidden_size = 9;
    big.model = SequenceModel::new(&big.meta.model, 1).unwrap();
    next_checkpoint(&mut big, &old, 1);
    let new = fresh(&base, "new");
    let mut f = fixture();
    next_checkpoint(&mut f, &new, 1);
    // the new checkpoint as one without second moments writes it
    std::fs::remove_file(new.join("optimizer_v.safetensors")).unwrap();
    let p = new.join(MANIFEST);
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    m["files"]
        .as_array_mut()
        .unwrap()
        .retain(|e| e["name"] != "optimizer_v.safetensors");
    std::fs::write(&p, serde_json::to_string(&m).unwrap()).unwrap();
    let want = loads_as(&new);
    // the old model's second moments, left beside it
    std::fs::copy(
        old.join("optimizer_v.safetensors"),
        new.join("optimizer_v.safetensors"),
    )
    .unwrap();
    assert_eq!(loads_as(&new), want);
    let l = modeldir::load(&new).unwrap();
    assert!(l.model.optimizer.v.iter().all(|&x| x == 0.0));
    assert!(modeldir::load_for_use(&new).is_ok());
    // without a manifest (a version 1 directory) every file present is the checkpoint's
    std::fs::remove_file(new.join(MANIFEST)).unwrap();
    let e = modeldir::load(&new).unwrap_err().to_string();
    assert!(e.contains("optimizer_v.safetensors"), "{e}");
    let _ = std::fs::remove_dir_all(&base);
}

/// A FIFO put in place of a checkpoint file (or of the manifest) is refused as not a regular
/// file; opening it for reading would wait for a writer forever, and every command hung.
#[cfg(unix)]
#[test]
fn a_pipe_in_place_of_a_checkpoint_file_is_refused_not_waited_on() {
    let base = std::env::temp_dir().join(format!("lstm-ckpt-fifo-{}", std::process::id()));
    for name in ["optimizer_m.safetensors", MANIFEST, "config.json"] {
        let d = fresh(&base, "m");
        let mut f = fixture();
        next_checkpoint(&mut f, &d, 1);
        let p = d.join(name);
        std::fs::remove_file(&p).unwrap();
        let made = std::process::Command::new("mkfifo").arg(&p).status();
        if !made.is_ok_and(|s| s.success()) {
            eprintln!("skipped: no mkfifo here");
            return;
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let dir = d.clone();
        std::thread::spawn(move || {
            let _ = tx.send(
                modeldir::load_for_use(&dir)
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
            );
        });
        let got = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("loading with a pipe as {name} still waits"));
        let e = got.expect_err(name);
        assert!(e.contains(name) && e.contains("not a regular file"), "{e}");
    }
    let _ = std::fs::remove_dir_all(&base);
}

/// A directory where a checkpoint file goes stops the save with that directory named and what
/// to do, not the staged file's path; once it is moved away the next save completes.
#[test]
fn a_directory_in_a_checkpoint_files_place_is_named_on_save() {
    let base = std::env::temp_dir().join(format!("lstm-ckpt-dirname-{}", std::process::id()));
    let d = fresh(&base, "m");
    let mut f = fixture();
    next_checkpoint(&mut f, &d, 1);
    std::fs::remove_file(d.join("config.json")).unwrap();
    std::fs::create_dir(d.join("config.json")).unwrap();
    std::fs::write(d.join("config.json").join("x"), b"kept").unwrap();
    let state = TrainingState {
        step: 2,
        ..Default::default()
    };
    let e = modeldir::save(&d, &f.meta, &f.model, &state)
        .unwrap_err()
        .to_string();
    let want = d.join("config.json").display().to_string();
    assert!(
        e.starts_with(&want) || e.contains(&format!("{want}:")),
        "{e}"
    );
    assert!(!e.contains(STAGING) && e.contains("move it away"), "{e}");
    // the user's directory is untouched
    assert_eq!(
        std::fs::read(d.join("config.json").join("x")).unwrap(),
        b"kept"
    );
    std::fs::remove_dir_all(d.join("config.json")).unwrap();
    modeldir::save(&d, &f.meta, &f.model, &state).unwrap();
    assert_eq!(loads_as(&d).0, 2);
    assert!(!d.join(STAGING).exists());
    let _ = std::fs::remove_dir_all(&base);
}

/// A staged manifest that does not parse stops a save as it stops a load, and both say to
/// remove the staging directory; after that the save goes through.
#[test]
fn a_damaged_staged_manifest_is_explained_by_save_as_by_load() {
    let base = std::env::temp_dir().join(format!("lstm-ckpt-staged-{}", std::process::id()));
    let d = fresh(&base, "m");
    let mut f = fixture();
    next_checkpoint(&mut f, &d, 1);
    std::fs::create_dir(d.join(STAGING)).unwrap();
    std::fs::write(d.join(STAGING).join(MANIFEST), b"{\"step\": 2, \"fil").unwrap();
    let advice = format!("remove {}", d.join(STAGING).display());
    let e = modeldir::load(&d).unwrap_err().to_string();
    assert!(e.contains(&advice), "{e}");
    let state = TrainingState {
        step: 2,
        ..Default::default()
    };
    let e = modeldir::save(&d, &f.meta, &f.model, &state)
        .unwrap_err()
        .to_string();
    assert!(e.contains(&advice), "{e}");
    std::fs::remove_dir_all(d.join(STAGING)).unwrap();
    modeldir::save(&d, &f.meta, &f.model, &state).unwrap();
    assert_eq!(loads_as(&d).0, 2);
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn a_classifiers_label_values_are_written_as_version_3_and_checked_on_load() {
    use lstm::tasks::modeldir::LabelValues;
    let base = std::env::temp_dir().join(format!("lstm-labelvalues-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let vocab = Vocab::chars_from("abcdef");
    let cfg = ModelConfig {
        input: InputKind::Embedding {
            vocab: vocab.len(),
            dim: 4,
        },
        hidden_size: 6,
        head: Head::LastStep { outputs: 3 },
        ..Default::default()
    };
    let meta = ModelMeta {
        task: Task::Classify,
        model: cfg.clone(),
        vocab: Some(vocab),
        labels: Some(vec!["-1".into(), "0".into(), "12".into()]),
        // one model (the default's further models would need their files)
        settings: Settings {
            members: 1,
            ..Settings::defaults(Task::Classify)
        },
        label_values: Some(LabelValues::Integer),
        ..fixture().meta
    };
    let model = SequenceModel::new(&cfg, 1).unwrap();
    let state = TrainingState::default();
    let config = |d: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(d.join("config.json")).unwrap()).unwrap()
    };
    // with label values: version 3, which this build reads back
    let d = base.join("ints");
    modeldir::save(&d, &meta, &model, &state).unwrap();
    let v = config(&d);
    assert_eq!(v["format_version"], 3);
    assert_eq!(v["label_values"], "integer");
    let l = modeldir::load(&d).unwrap();
    assert_eq!(l.meta.label_values, Some(LabelValues::Integer));
    assert_eq!(l.meta.format_version, 3);
    // the weights file says the same version
    let w = std::fs::read(d.join("model.safetensors")).unwrap();
    let header_len = u64::from_le_bytes(w[..8].try_into().unwrap()) as usize;
    let header = String::from_utf8_lossy(&w[8..8 + header_len]).to_string();
    assert!(header.contains("lstm-model/3 classify"), "{header}");
    // without: version 2, which builds before version 3 read
    let d2 = base.join("text");
    let plain = ModelMeta {
        label_values: None,
        ..meta.clone()
    };
    modeldir::save(&d2, &plain, &model, &state).unwrap();
    assert_eq!(config(&d2)["format_version"], 2);
    assert!(config(&d2).get("label_values").is_none());
    assert_eq!(modeldir::load(&d2).unwrap().meta.label_values, None);
    // a label that is not written as an integer, booleans for integer labels, label values
    // on a text model: refused as an edited config
    for (name, edited) in [
        (
            "leading zero",
            ModelMeta {
                labels: Some(vec!["-1".into(), "00".into(), "12".into()]),
                ..meta.clone()
            },
        ),
        (
            "booleans",
            ModelMeta {
                label_values: Some(LabelValues::Boolean),
                ..meta.clone()
            },
        ),
        (
            "text model",
            ModelMeta {
                label_values: Some(LabelValues::Boolean),
                ..fixture().meta
            },
        ),
    ] {
        let d = base.join(name.replace(' ', "-"));
        let m = if name == "text model" {
            fixture().model
        } else {
            model.clone()
        };
        modeldir::save(&d, &edited, &m, &state).unwrap();
        let e = modeldir::load(&d).unwrap_err().to_string();
        assert!(e.contains("label_values"), "{name}: {e}");
    }
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn label_values_admit_what_pythons_str_writes() {
    use lstm::tasks::modeldir::LabelValues::{Boolean, Integer};
    for ok in ["0", "7", "-3", "12345678901234567890123"] {
        assert!(Integer.admits(ok), "{ok}");
    }
    for bad in ["", "-", "-0", "007", "+1", "1.0", " 1", "1e3", "True", "٣"] {
        assert!(!Integer.admits(bad), "{bad:?}");
    }
    assert!(Boolean.admits("True") && Boolean.admits("False"));
    for bad in ["true", "1", "TRUE", "False "] {
        assert!(!Boolean.admits(bad), "{bad:?}");
    }
}
