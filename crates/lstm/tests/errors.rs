//! Bad input gives typed errors, not panics: wrong shapes, lengths, states and tokens, a backward
//! without forward, and a model too large for the machine's memory.

#![allow(clippy::needless_range_loop)]

mod common;

use common::{stack, text_model};
use lstm::cell::Mode;
use lstm::model::{Batch, Head, InputKind, Inputs, ModelConfig, Targets};
use lstm::params::ParamStore;
use lstm::recurrent::{
    Input, Recurrent, RecurrentCache, RecurrentConfig, RecurrentState, SequenceBatch,
};
use lstm::Error;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let cfg = RecurrentConfig {
        input_size: 3,
        hidden_size: 4,
        ..Default::default()
    };
    let (rnn, store) = stack(cfg.clone());
    let mut c = RecurrentCache::default();
    let x = vec![0.0; 2 * 2 * 3];
    assert!(matches!(
        rnn.forward(
            &store.values,
            SequenceBatch::new(Input::Dense(&x[..5]), 2, 2),
            &mut c
        ),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        rnn.forward(
            &store.values,
            SequenceBatch::new(Input::Dense(&x), 2, 2).with_lengths(&[1, 3]),
            &mut c
        ),
        Err(Error::Index(_))
    ));
    assert!(matches!(
        rnn.forward(
            &store.values,
            SequenceBatch::new(Input::Dense(&x), 2, 2).with_lengths(&[0, 2]),
            &mut c
        ),
        Err(Error::Index(_))
    ));
    let bad_state = RecurrentState {
        h: vec![0.0; 3],
        c: vec![],
    };
    assert!(rnn
        .forward(
            &store.values,
            SequenceBatch::new(Input::Dense(&x), 2, 2).with_initial_state(&bad_state),
            &mut c
        )
        .is_err());
    assert!(rnn
        .forward(
            &store.values,
            SequenceBatch::new(Input::Tokens(&[0, 1, 2, 3]), 2, 2),
            &mut c
        )
        .is_err());
    assert!(rnn
        .backward(
            &store.values,
            &mut vec![0.0; store.len()],
            &mut RecurrentCache::default(),
            &x,
            None
        )
        .is_err());
    for bad in [
        RecurrentConfig {
            hidden_size: 0,
            ..cfg.clone()
        },
        RecurrentConfig {
            proj_size: 4,
            ..cfg.clone()
        },
        RecurrentConfig {
            mode: Mode::Gru,
            peephole: true,
            ..cfg.clone()
        },
        RecurrentConfig {
            dropout: 1.0,
            ..cfg.clone()
        },
        RecurrentConfig {
            recurrent_dropout: -0.1,
            ..cfg.clone()
        },
    ] {
        let mut s = ParamStore::default();
        assert!(matches!(
            Recurrent::new(bad, &mut s, "", &mut ChaCha8Rng::seed_from_u64(0)),
            Err(Error::Config(_))
        ));
    }
    let mut model = text_model(0, 0.0, 0.0);
    let x = [0u32, 1, 2, 50];
    let y = [0u32, 1, 2, 3];
    assert!(matches!(
        model.train_step_text(&x, &y, 1, 4),
        Err(Error::Index(_))
    ));
    let batch = Batch {
        inputs: Inputs::Tokens(&y),
        targets: Targets::Classes(&[0, 1, 99, 3]),
        batch: 1,
        seq_len: 4,
        lengths: None,
    };
    assert!(matches!(model.train_step(&batch), Err(Error::Index(_))));
}

/// Misuses of the library API found by an adversarial pass, each a typed error rather than a
/// panic, an abort or a silent wrong result: sizes whose product wraps, a backward pass on
/// another stack's cache or with too few parameters, a GRU given a cell-state gradient, a
/// carried state of another batch size, two stacks under one prefix, an optimizer of another
/// model, and generation from a model that is not a text model.
#[test]
fn api_misuse_is_a_typed_error() {
    use lstm::data::vocab::Vocab;
    use lstm::model::infer::Precision;
    let cfg = RecurrentConfig {
        input_size: 3,
        hidden_size: 4,
        ..Default::default()
    };
    let (rnn, store) = stack(cfg.clone());
    let mut c = RecurrentCache::default();
    // (T·B·I wraps to 0, which the empty input would match)
    assert!(matches!(
        rnn.forward(
            &store.values,
            SequenceBatch::new(Input::Dense(&[]), 1usize << 63, 2),
            &mut c
        ),
        Err(Error::Config(_))
    ));
    let mut model = text_model(0, 0.0, 0.0);
    assert!(matches!(
        model.predict(Inputs::Tokens(&[]), 1usize << 62, 4, None),
        Err(Error::Config(_))
    ));
    // backward on a cache another stack filled
    let x = vec![0.5; 2 * 2 * 3];
    rnn.forward(
        &store.values,
        SequenceBatch::new(Input::Dense(&x), 2, 2),
        &mut c,
    )
    .unwrap();
    let (other, other_store) = stack(RecurrentConfig {
        hidden_size: 8,
        num_layers: 2,
        ..cfg.clone()
    });
    let d_out = vec![0.1; 2 * 2 * 4];
    let mut g = vec![0.0; other_store.len()];
    assert!(matches!(
        other.backward(&other_store.values, &mut g, &mut c, &d_out, None),
        Err(Error::Config(_))
    ));
    // too few parameters
    assert!(rnn
        .backward(&[0.0; 10], &mut [0.0; 10], &mut c, &d_out, None)
        .is_err());
    // a GRU has no cell state
    let (gru, gstore) = stack(RecurrentConfig {
        mode: Mode::Gru,
        ..cfg.clone()
    });
    let mut gc = RecurrentCache::default();
    gru.forward(
        &gstore.values,
        SequenceBatch::new(Input::Dense(&x), 2, 2),
        &mut gc,
    )
    .unwrap();
    let d_final = RecurrentState {
        h: vec![1.0; 2 * 4],
        c: vec![1.0; 2 * 4],
    };
    let err = gru
        .backward(
            &gstore.values,
            &mut vec![0.0; gstore.len()],
            &mut gc,
            &d_out,
            Some(&d_final),
        )
        .unwrap_err();
    assert!(err.to_string().contains("no cell state"), "{err}");
    // ... nor an initial one with a cell state
    let h0 = RecurrentState {
        h: vec![0.0; 2 * 4],
        c: vec![0.0; 2 * 4],
    };
    let err = gru
        .forward(
            &gstore.values,
            SequenceBatch::new(Input::Dense(&x), 2, 2).with_initial_state(&h0),
            &mut gc,
        )
        .unwrap_err();
    assert!(err.to_string().contains("no cell state"), "{err}");
    // two stacks under one prefix in one store
    let mut shared = ParamStore::default();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    Recurrent::new(cfg.clone(), &mut shared, "lstm.", &mut rng).unwrap();
    assert!(matches!(
        Recurrent::new(cfg.clone(), &mut shared, "lstm.", &mut rng),
        Err(Error::Config(_))
    ));
    // a carried state of another batch size (2 layers × batch 1 × 48, stepped with batch 2)
    model.carry = Some(RecurrentState {
        h: vec![0.0; 2 * 48],
        c: vec![0.0; 2 * 48],
    });
    assert!(matches!(
        model.train_step_text(&[0, 1, 2, 3], &[1, 2, 3, 4], 2, 2),
        Err(Error::Shape { .. })
    ));
    // an empty one starts from zeros
    model.carry = Some(RecurrentState::default());
    model
        .train_step_text(&[0, 1, 2, 3], &[1, 2, 3, 4], 2, 2)
        .unwrap();
    // an optimizer sized for another model
    model.carry = None;
    model.optimizer = lstm::model::optim::Optimizer::new(model.config().optimizer, 3);
    assert!(matches!(
        model.train_step_text(&[0, 1, 2, 3], &[1, 2, 3, 4], 2, 2),
        Err(Error::Shape { .. })
    ));
    // generation needs a unidirectional text model of the vocabulary's size
    let vocab = Vocab::chars_from("abcdefghij");
    assert_eq!(vocab.len(), 11);
    let gen = |m: &mut lstm::model::SequenceModel| {
        lstm::tasks::text::generate(
            m,
            &vocab,
            "ab",
            5,
            1.0,
            0,
            Precision::F32,
            &mut ChaCha8Rng::seed_from_u64(1),
            &mut |_| {},
        )
    };
    assert!(gen(&mut text_model(0, 0.0, 0.0)).is_ok());
    for head in [Head::LastStep { outputs: 2 }, Head::PerStep { outputs: 5 }] {
        let mut m = lstm::model::SequenceModel::new(
            &ModelConfig {
                input: InputKind::OneHot { vocab: 11 },
                hidden_size: 4,
                head,
                ..Default::default()
            },
            0,
        )
        .unwrap();
        assert!(matches!(gen(&mut m), Err(Error::Config(_))), "{head:?}");
    }
    let mut bi = lstm::model::SequenceModel::new(
        &ModelConfig {
            input: InputKind::OneHot { vocab: 11 },
            hidden_size: 4,
            bidirectional: true,
            head: Head::PerStep { outputs: 11 },
            ..Default::default()
        },
        0,
    )
    .unwrap();
    let err = gen(&mut bi).unwrap_err();
    assert!(err.to_string().contains("bidirectional"), "{err}");
    // a job checks its settings before it reads anything (NaN minutes trained forever)
    let out = std::env::temp_dir().join(format!("lstm-never-{}", std::process::id()));
    for (bad, why) in [
        (
            lstm::Settings {
                steps: Some(0),
                ..lstm::Settings::defaults(lstm::Task::Text)
            },
            "steps (--steps) must be at least 1",
        ),
        (
            lstm::Settings {
                steps: None,
                minutes: Some(f64::NAN),
                ..lstm::Settings::defaults(lstm::Task::Text)
            },
            "minutes (--minutes) must be a positive, finite number",
        ),
        (
            lstm::Settings {
                steps: None,
                minutes: None,
                epochs: None,
                ..lstm::Settings::defaults(lstm::Task::Text)
            },
            "no training budget",
        ),
    ] {
        let err = lstm::Job::new(lstm::Task::Text, bad, out.clone())
            .err()
            .expect("refused");
        assert!(err.to_string().contains(why), "{err}");
    }
    assert!(!out.exists());
}

/// A model whose parameters, gradients and optimizer state do not fit in the machine's memory
/// is refused by `ModelConfig::validate` (which `SequenceModel::new` runs before allocating),
/// with a typed error; one that fits passes. Validation allocates nothing, so this is safe on
/// any machine.
#[test]
fn model_too_large_for_memory_is_refused_by_validate() {
    // 4·H·(H + V) ≈ 1.8e9 parameters: under the 2^31 parameter limit, about 28 GB with
    // gradients and Adam's moments
    let cfg = ModelConfig {
        input: InputKind::OneHot { vocab: 65 },
        hidden_size: 21_000,
        head: Head::PerStep { outputs: 65 },
        ..Default::default()
    };
    let need = lstm::model::memory::parameter_bound(&cfg) * 16;
    let have = lstm::model::memory::machine_memory().unwrap_or(64 << 30);
    match cfg.validate() {
        Err(Error::Config(msg)) if need > have => assert!(msg.contains("memory"), "{msg}"),
        Ok(()) if need <= have => {}
        other => panic!("need {need} B, have {have} B, validate gave {other:?}"),
    }
    let small = ModelConfig {
        hidden_size: 64,
        ..cfg
    };
    small.validate().unwrap();
}

/// Each of `job`'s functions, given a model of another kind, names the function for it.
#[test]
fn job_functions_name_the_function_for_the_model() {
    use lstm::tasks::job::{self, GenerateOptions};
    use lstm::{Job, Settings, Task};
    let dir = std::env::temp_dir().join(format!("lstm-kinds-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // two steps of a tiny model of `task` on `file`
    let small = |task: Task, file: &std::path::Path| {
        let mut s = Settings::defaults(task);
        s.data = Some(file.display().to_string());
        (s.minutes, s.epochs, s.steps) = (None, None, Some(2));
        (s.threads, s.hidden, s.batch) = (1, 4, 4);
        s
    };
    let run = |task: Task, s: Settings, out: &std::path::Path| {
        Job::new(task, s, out.to_path_buf())
            .unwrap()
            .train(
                &|_, _, _| Ok(()),
                &std::sync::atomic::AtomicBool::new(false),
                &mut |_| {},
            )
            .unwrap();
        lstm::load(out).unwrap()
    };
    let train = |task: Task, name: &str, data: String, tweak: &dyn Fn(&mut Settings)| {
        let file = dir.join(format!("{name}.csv"));
        std::fs::write(&file, data).unwrap();
        let mut s = small(task, &file);
        tweak(&mut s);
        (run(task, s, &dir.join(name)), file)
    };
    let (mut text, text_file) = train(
        Task::Text,
        "text",
        "to be or not to be. ".repeat(50),
        &|s| {
            s.seq_len = 8;
        },
    );
    let mut rows = String::from("text,label\n");
    for i in 0..40 {
        rows.push_str(&format!("good {i},pos\nbad {i},neg\n"));
    }
    let (mut classifier, _) = train(Task::Classify, "cls", rows, &|s| {
        (s.embedding, s.min_count) = (4, 1);
    });
    let series: String = std::iter::once("y\n".to_string())
        .chain((0..80).map(|t| format!("{}\n", 10 + t % 7)))
        .collect();
    let (mut window, series_file) = train(Task::Forecast, "window", series, &|s| {
        s.forecaster = lstm::tasks::settings::Forecaster::Window;
        s.columns = vec!["y".into()];
        (s.window, s.horizon, s.layers) = (8, 2, 1);
    });
    let (mut global, _) = train(
        Task::Forecast,
        "global",
        std::fs::read_to_string(&series_file).unwrap(),
        &|s| {
            s.columns = vec!["y".into()];
            (s.horizon, s.layers, s.season, s.members) = (4, 1, Some(7), 1);
        },
    );
    let says = |r: Result<(), job::JobError>, function: &str, right: &str| {
        let m = r.unwrap_err().to_string();
        assert!(
            m.contains(&format!("`{function}` needs")) && m.contains(&format!("use `{right}`")),
            "{function}: {m}"
        );
    };
    let texts = ["good".to_string()];
    let o = GenerateOptions {
        prime: "to".into(),
        length: 5,
        temperature: 1.0,
        top_k: 0,
        bf16: false,
        seed: 1,
    };
    says(
        job::classify(&mut text, &texts).map(drop),
        "classify",
        "generate",
    );
    says(
        job::generate(&mut classifier, &o, &mut |_| {}).map(drop),
        "generate",
        "classify",
    );
    says(
        job::forecast(&mut global, &series_file, 2).map(drop),
        "forecast",
        "forecast_global",
    );
    says(
        job::forecast_global(&mut window, &series_file, None, &[]).map(drop),
        "forecast_global",
        "forecast",
    );
    let m = job::backtest(&mut window, &series_file, 1)
        .unwrap_err()
        .to_string();
    assert!(
        m.contains("`backtest` needs a global forecaster") && m.contains("`evaluate`"),
        "{m}"
    );
    says(
        job::forecast(&mut text, &text_file, 2).map(drop),
        "forecast",
        "generate",
    );
    // and each takes its own
    job::generate(&mut text, &o, &mut |_| {}).unwrap();
    job::classify(&mut classifier, &texts).unwrap();
    job::forecast(&mut window, &series_file, 2).unwrap();
    job::forecast_global(&mut global, &series_file, None, &[]).unwrap();

    // found by a probe of the library API (2026-12-07), each a panic, a hang or a silent
    // wrong result before
    // a window forecast of 0 steps was empty, of usize::MAX ran on, growing
    for steps in [0, usize::MAX] {
        let m = format!(
            "{:?}",
            job::forecast(&mut window, &series_file, steps).unwrap_err()
        );
        assert!(m.contains("steps must be between 1 and"), "{m}");
    }
    // a generator precision of another name was scored in f32
    let m = job::evaluate(
        &mut text,
        &text_file,
        &job::EvalOptions {
            generator: Some("fp64".into()),
            ..Default::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(m.contains("f32 or bf16"), "{m}");
    // a new run trained into a folder of other files, or over another model
    let keep = dir.join("keep");
    std::fs::create_dir_all(&keep).unwrap();
    std::fs::write(keep.join("notes.txt"), "mine").unwrap();
    let mut s = text.meta.settings.clone();
    s.steps = Some(1);
    for (into, held) in [
        (keep.clone(), "notes.txt"),
        (dir.join("global"), "config.json"),
    ] {
        let before = std::fs::read(into.join(held)).unwrap();
        let m = Job::new(Task::Text, s.clone(), into.clone())
            .unwrap()
            .train(
                &|_, _, _| Ok(()),
                &std::sync::atomic::AtomicBool::new(false),
                &mut |_| {},
            )
            .unwrap_err()
            .to_string();
        assert!(m.contains("cannot train a new model into"), "{m}");
        assert_eq!(std::fs::read(into.join(held)).unwrap(), before);
    }
    assert_eq!(std::fs::read_dir(&keep).unwrap().count(), 1);
    assert!(lstm::load(&dir.join("global"))
        .unwrap()
        .meta
        .global
        .is_some());
    // a resume with another shape was saved beside the old network
    let mut changed = text.meta.settings.clone();
    (changed.hidden, changed.steps) = (99, Some(3));
    let m = Job::resume(
        lstm::load(&dir.join("text")).unwrap(),
        changed,
        dir.join("r"),
    )
    .err()
    .expect("refused")
    .to_string();
    assert!(m.contains("hidden 99 (saved: 4)"), "{m}");
    // ... while a new budget resumes
    let mut budget = text.meta.settings.clone();
    budget.steps = Some(3);
    Job::resume(
        lstm::load(&dir.join("text")).unwrap(),
        budget,
        dir.join("r"),
    )
    .unwrap();
    // ... and so do the settings a run was started with, whose defaults it resolved (the
    // review: a default horizon of 0, saved as 14, was refused as a change)
    let mut started = small(Task::Forecast, &series_file);
    started.columns = vec!["y".into()];
    (started.layers, started.season, started.members) = (1, Some(7), 1);
    let g0 = run(Task::Forecast, started.clone(), &dir.join("g0"));
    assert_eq!(g0.meta.settings.horizon, 14);
    started.steps = Some(4);
    let resumed = Job::resume(g0, started, dir.join("g0")).unwrap();
    assert_eq!(resumed.meta.settings.horizon, 14);
    // a target named `q0.5` beside the quantile 0.5
    let q_file = dir.join("q.csv");
    std::fs::write(
        &q_file,
        std::fs::read_to_string(&series_file)
            .unwrap()
            .replacen("y\n", "q0.5\n", 1),
    )
    .unwrap();
    let (mut q_model, _) = train(
        Task::Forecast,
        "q",
        std::fs::read_to_string(&q_file).unwrap(),
        &|s| {
            s.columns = vec!["q0.5".into()];
            (s.horizon, s.layers, s.season, s.members) = (4, 1, Some(7), 1);
        },
    );
    let m = job::forecast_global(&mut q_model, &q_file, None, &[0.5])
        .unwrap_err()
        .to_string();
    assert!(m.contains("named `q0.5`"), "{m}");
    // (the server's in-memory forecast answers in JSON: it takes the level, and says so)
    let csv = std::fs::read_to_string(&q_file).unwrap();
    job::forecast_global_csv(&mut q_model, "q.csv", &csv, None, &[0.5]).unwrap();
    // a global forecast from fewer origins than series, or past what was prepared
    let spec = global.meta.global.clone().unwrap();
    let panel = lstm::data::panel::parse_panel(
        &std::fs::read_to_string(&series_file).unwrap(),
        "s.csv",
        &lstm::data::panel::PanelSpec {
            id_column: None,
            time_column: None,
            target: "y".into(),
            known: vec![],
            freq: None,
        },
    )
    .unwrap();
    let prepared = lstm::tasks::global::prepare(&spec, &panel, &[80], 0).unwrap();
    let mut forecast = |origins: &[usize]| {
        lstm::tasks::global::forecast(&spec, &mut global.model, &prepared, origins, 1, &[])
            .map(drop)
    };
    assert!(matches!(forecast(&[]), Err(Error::Shape { .. })));
    let m = forecast(&[80]).unwrap_err().to_string();
    assert!(m.contains("prepared with 80 steps"), "{m}");
    forecast(&[76]).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Found by a probe of the library API (2026-12-07): optimizer settings out of range put NaN
/// into every weight with an `Ok`, a vocabulary of the unknown token alone and resized public
/// buffers panicked, and a wrong data length was reported as a wrong shape equal to the right.
#[test]
fn a_probe_of_the_library_api() {
    use lstm::model::optim::OptimizerConfig;
    use lstm::model::SequenceModel;
    let config = |optimizer| ModelConfig {
        input: InputKind::OneHot { vocab: 6 },
        hidden_size: 8,
        head: Head::PerStep { outputs: 6 },
        optimizer,
        ..Default::default()
    };
    let adam = |beta1, beta2, eps, weight_decay| OptimizerConfig::Adam {
        lr: 0.01,
        beta1,
        beta2,
        eps,
        weight_decay,
    };
    for (bad, says) in [
        (adam(0.9, 1.0, 1e-8, 0.0), "beta2 must be in [0, 1)"),
        (adam(f32::NAN, 0.999, 1e-8, 0.0), "beta1 must be in [0, 1)"),
        (
            adam(0.9, 0.999, -1.0, 0.0),
            "eps must be a finite number above 0",
        ),
        (
            adam(0.9, 0.999, 0.0, 0.0),
            "eps must be a finite number above 0",
        ),
        (
            OptimizerConfig::AdamW {
                lr: 0.01,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: f32::INFINITY,
            },
            "weight decay must be a finite number >= 0",
        ),
        (
            OptimizerConfig::adam(-1.0),
            "learning rate must be positive",
        ),
        (
            OptimizerConfig::Sgd {
                lr: 0.1,
                momentum: f32::NAN,
                weight_decay: 0.0,
                nesterov: false,
            },
            "momentum must be a finite number >= 0",
        ),
        (
            OptimizerConfig::Sgd {
                lr: 0.1,
                momentum: 0.0,
                weight_decay: 0.0,
                nesterov: true,
            },
            "Nesterov momentum needs a momentum above 0",
        ),
    ] {
        let m = SequenceModel::new(&config(bad), 0).expect_err("refused");
        assert!(m.to_string().contains(says), "{bad:?}: {m}");
    }
    let mut m = SequenceModel::new(&config(OptimizerConfig::adam(0.01)), 0).unwrap();
    assert!(m.set_optimizer(OptimizerConfig::adam(f32::NAN)).is_err());
    assert_eq!(m.config().optimizer, OptimizerConfig::adam(0.01));
    m.train_step_text(&[1, 2, 3], &[2, 3, 4], 1, 3).unwrap();
    assert!(m.store.values.iter().all(|v| v.is_finite()));
    // the optimizer is a public field: checked where a step uses it
    let before = m.store.values.clone();
    m.optimizer.config = OptimizerConfig::adam(f32::NAN);
    assert!(m.train_step_text(&[1, 2, 3], &[2, 3, 4], 1, 3).is_err());
    assert_eq!(m.store.values, before);
    // the settings' momentum, which no check read
    let s = lstm::Settings {
        momentum: f32::NAN,
        ..lstm::Settings::defaults(lstm::Task::Text)
    };
    let out = std::env::temp_dir().join(format!("lstm-momentum-{}", std::process::id()));
    let err = lstm::Job::new(lstm::Task::Text, s, out.clone())
        .err()
        .expect("refused");
    assert!(err.to_string().contains("momentum must be"), "{err}");
    assert!(!out.exists());
    // a vocabulary of the unknown token alone: nothing to generate
    let vocab = lstm::data::vocab::Vocab::new(lstm::data::vocab::TokenKind::Char, vec![]);
    assert_eq!(vocab.len(), 1);
    let mut one = SequenceModel::new(
        &ModelConfig {
            input: InputKind::OneHot { vocab: 1 },
            hidden_size: 4,
            head: Head::PerStep { outputs: 1 },
            ..Default::default()
        },
        0,
    )
    .unwrap();
    let err = lstm::tasks::text::generate(
        &mut one,
        &vocab,
        "x",
        5,
        1.0,
        0,
        lstm::model::infer::Precision::F32,
        &mut ChaCha8Rng::seed_from_u64(1),
        &mut |_| {},
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("nothing can be generated"),
        "{err}"
    );
    let err = lstm::tasks::text::TextStream::new(&vocab, "a", 3, 1.0, 0, 1.0, 0).unwrap_err();
    assert!(
        err.to_string().contains("nothing can be generated"),
        "{err}"
    );
    // public buffers resized: an error, not a panic in the head's slices
    let mut short = text_model(0, 0.0, 0.0);
    let n = short.store.values.len();
    short.store.values.truncate(n - 3);
    assert!(matches!(
        short.predict(Inputs::Tokens(&[0, 1]), 1, 2, None),
        Err(Error::Shape { .. })
    ));
    for err in [
        lstm::model::infer::Generator::new(&short, 1).err(),
        lstm::model::batch::BatchGenerator::new(&short).err(),
    ] {
        let err = err.expect("refused").to_string();
        assert!(err.contains("parameter values"), "{err}");
    }
    let mut no_grads = text_model(0, 0.0, 0.0);
    no_grads.store.grads.truncate(10);
    assert!(matches!(
        no_grads.train_step_text(&[0, 1], &[1, 2], 1, 2),
        Err(Error::Shape { .. })
    ));
    // a wrong data length under the right shape says so
    let (_, mut store) = stack(RecurrentConfig {
        input_size: 3,
        hidden_size: 4,
        ..Default::default()
    });
    let err = store
        .set("weight_ih_l0", &[16, 3], &[0.0; 5])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("48 values") && err.contains("got 5 values"),
        "{err}"
    );
}
