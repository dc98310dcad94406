//! `lstm import` and `lstm export`: models in and out of PyTorch, Keras and ONNX.

use anyhow::{bail, Context, Result};
use lstm::checkpoint::TensorFile;
use lstm::interop;
use lstm::model::SequenceModel;
use lstm::modeldir::{self, ModelMeta, Task, TrainingState};

use crate::args::{ExportArgs, ExportFormat, ImportArgs, ImportFormat};

pub fn export(a: &ExportArgs) -> Result<()> {
    let l = modeldir::load(&a.model)
        .with_context(|| format!("cannot load the model in {}", a.model.display()))?;
    let bytes = match a.format {
        ExportFormat::Pytorch => {
            let cfg = std::fs::read_to_string(a.model.join("config.json"))
                .with_context(|| format!("cannot read {}/config.json", a.model.display()))?;
            interop::export_pytorch(&l.model, Some(&cfg))?
        }
        ExportFormat::Keras => interop::export_keras(&l.model)?,
        ExportFormat::Onnx => {
            let graph = match l.meta.task {
                Task::Text => lstm::onnx::Graph::Text,
                Task::Forecast => lstm::onnx::Graph::Forecast,
                Task::Classify => lstm::onnx::Graph::Classify,
            };
            lstm::onnx::export(&l.model, graph)?
        }
    };
    modeldir::write_atomic(&a.out, &bytes)
        .with_context(|| format!("cannot write {}", a.out.display()))?;
    eprintln!(
        "wrote {} ({} bytes, {} model)",
        a.out.display(),
        bytes.len(),
        l.meta.task
    );
    Ok(())
}

pub fn import(a: &ImportArgs) -> Result<()> {
    if a.out.join("config.json").exists() {
        bail!(
            "{} already holds a model; choose another --out (nothing was changed)",
            a.out.display()
        );
    }
    let file = TensorFile::read(&a.weights)
        .with_context(|| format!("cannot read the weights in {}", a.weights.display()))?;
    let config_json = match &a.config {
        Some(p) => std::fs::read_to_string(p)
            .with_context(|| format!("cannot read the configuration {}", p.display()))?,
        None => match file.metadata.get(interop::CONFIG_KEY) {
            Some(c) => c.clone(),
            None => bail!(
                "{} carries no configuration; pass --config with a config.json that describes the \
                 network (see the README, \"Using models trained elsewhere\")",
                a.weights.display()
            ),
        },
    };
    let meta: ModelMeta = serde_json::from_str(&config_json)
        .context("the configuration is not a valid lstm config.json")?;
    if meta.format != modeldir::FORMAT || meta.format_version > modeldir::FORMAT_VERSION {
        bail!(
            "the configuration is format `{}` version {}; this lstm reads `{}` up to version {}",
            meta.format,
            meta.format_version,
            modeldir::FORMAT,
            modeldir::FORMAT_VERSION
        );
    }
    let mut model =
        SequenceModel::new(&meta.model, 0).context("invalid network in the configuration")?;
    match a.format {
        ImportFormat::Pytorch => interop::import_pytorch(&file, &mut model)?,
        ImportFormat::Keras => interop::import_keras(&file, &mut model)?,
    }
    modeldir::save(&a.out, &meta, &model, &TrainingState::default())
        .with_context(|| format!("cannot write the model into {}", a.out.display()))?;
    eprintln!("imported a {} model into {}", meta.task, a.out.display());
    Ok(())
}
