//! The container of Keras 3's `.weights.h5`, read and written with the pure-Rust `hdf5-pure`
//! crate (no HDF5 C library).
//!
//! `model.save_weights("m.weights.h5")` writes one HDF5 group per layer under `layers/`, named
//! after the layer's class in snake case, repeats numbered in model order (`lstm`, `lstm_1`, ...;
//! the names given to the layers are not used), and the layer's variables as the float32
//! datasets `vars/0`, `vars/1`, ... in the order the layer creates them. A recurrent layer keeps
//! them in its cell (`layers/lstm/cell/vars/{0,1,2}`: kernel, recurrent kernel, bias), a
//! `Bidirectional` layer in its two wrapped layers
//! (`layers/bidirectional/{forward,backward}_layer/cell/vars/...`). Each `vars` group has a
//! `name` attribute (the layer's name), which Keras does not read back. A compiled model that
//! was trained also saves its optimizer under `optimizer/`; only `layers/` is read here.
//! `model.load_weights` finds each layer's group by the same class-and-order name.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use hdf5_pure::{AttrValue, DType, File, FileBuilder, GroupBuilder};

use super::KerasVar;
use crate::error::{Error, Result};
use crate::io::checkpoint::{TensorData, TensorFile};
use crate::params::ParamStore;

/// How deep groups are followed below `layers/` (Keras' deepest, a bidirectional layer's
/// `bidirectional/forward_layer/cell/vars/0`, is 5); deeper nesting (or a cycle of links in a
/// damaged file) is not Keras' layout.
const MAX_DEPTH: usize = 8;
/// At most this many objects under `layers/` are looked at.
const MAX_OBJECTS: usize = 100_000;

/// A group being assembled for writing.
#[derive(Default)]
struct Node {
    name: Option<String>,
    groups: BTreeMap<String, Node>,
    data: BTreeMap<String, (Vec<u64>, Vec<f32>)>,
}

impl Node {
    fn at(&mut self, path: &str) -> &mut Node {
        path.split('/').fold(self, |n, part| {
            n.groups.entry(part.to_string()).or_default()
        })
    }

    fn fill(&self, b: &mut GroupBuilder) {
        if let Some(name) = &self.name {
            b.set_attr("name", AttrValue::VarLenString(name.clone()));
        }
        for (name, (shape, data)) in &self.data {
            b.create_dataset(name).with_f32_data(data).with_shape(shape);
        }
        for (name, node) in &self.groups {
            let mut g = b.create_group(name);
            node.fill(&mut g);
            b.add_group(g.finish());
        }
    }
}

/// The layer name Keras gives the holder of the `vars` group `vars_group` (as `model.save_weights`
/// records it in the group's `name` attribute), for a model of recurrent layers of `class`.
fn holder_name(vars_group: &str, class: &str) -> String {
    let parts: Vec<&str> = vars_group.split('/').collect();
    match parts.as_slice() {
        ["layers", layer, "vars"] => layer.to_string(),
        ["layers", _, "cell", "vars"] | ["layers", _, _, "cell", "vars"] => format!("{class}_cell"),
        ["layers", layer, side, "vars"] => {
            let side = side.trim_end_matches("_layer");
            match layer.strip_prefix("bidirectional") {
                Some(n) => format!("{side}_{class}{n}"),
                None => format!("{side}_{layer}"),
            }
        }
        _ => "vars".to_string(),
    }
}

/// Writes `store`'s variables at their `.weights.h5` places (`vars`), with the `vars` groups
/// and `name` attributes `model.save_weights` writes for the same `Sequential` model.
pub(super) fn write(store: &ParamStore, vars: &[KerasVar], class: &str) -> Result<Vec<u8>> {
    let mut root = Node::default();
    for v in vars {
        let info = store
            .info(&v.key)
            .ok_or_else(|| Error::MissingTensor(v.key.clone()))?;
        let data = store.get(&v.key).unwrap_or_default().to_vec();
        let shape = info.shape.iter().map(|&d| d as u64).collect();
        let (group, name) = v.h5.rsplit_once('/').unwrap_or(("", &v.h5));
        root.at(group).data.insert(name.to_string(), (shape, data));
        // every layer on the way gets its (possibly empty) `vars` group, as Keras writes them
        let parts: Vec<&str> = group.split('/').collect();
        for end in 2..parts.len() {
            let holder = parts[..end].join("/");
            let vars_group = format!("{holder}/vars");
            let name = holder_name(&vars_group, class);
            root.at(&vars_group).name.get_or_insert(name);
        }
    }
    root.at("vars").name = Some("sequential".into());
    let mut fb = FileBuilder::new();
    for (name, node) in &root.groups {
        let mut g = fb.create_group(name);
        node.fill(&mut g);
        fb.add_group(g.finish());
    }
    fb.finish().map_err(|e| Error::Format {
        path: "the Keras weights being written".into(),
        reason: e.to_string(),
    })
}

/// Reads the datasets of a Keras `.weights.h5` (`bytes`, named `source` in errors) at the places
/// `vars` gives, into a [`TensorFile`] under the safetensors keys, checking each against the
/// shape `want` has for it. Datasets under `layers/` that no variable takes are an error.
/// The end-of-file address an HDF5 file's superblock records (the one absolute address in it,
/// a user block included), by which h5py finds a truncated file; `None` when the superblock is
/// not one this reads (versions 0 to 3) or records no end.
fn stored_eof(bytes: &[u8]) -> Option<u64> {
    const SIGNATURE: &[u8; 8] = b"\x89HDF\r\n\x1a\n";
    let at = std::iter::successors(Some(0usize), |&o| (o < (1 << 30)).then_some(o.max(256) * 2))
        .find(|&o| bytes.get(o..o + 8) == Some(&SIGNATURE[..]))?;
    let sb = &bytes[at..];
    let version = *sb.get(8)?;
    // where the size of offsets is, and where the base address starts
    let (size_at, base_at) = match version {
        0 => (13, 24),
        1 => (13, 28),
        2 | 3 => (9, 12),
        _ => return None,
    };
    let o = *sb.get(size_at)? as usize;
    if !matches!(o, 2 | 4 | 8) {
        return None;
    }
    let word = |k: usize| -> Option<u64> {
        let b = sb.get(base_at + k * o..base_at + (k + 1) * o)?;
        Some(b.iter().rev().fold(0u64, |acc, &x| (acc << 8) | x as u64))
    };
    // base address, then (free-space index | superblock extension), then the end of file
    let eof = word(2)?;
    (eof != u64::MAX >> (64 - 8 * o as u32)).then_some(eof)
}

pub(super) fn read(
    bytes: &[u8],
    source: &str,
    want: &ParamStore,
    vars: &[KerasVar],
) -> Result<TensorFile> {
    let fmt = |reason: String| Error::Format {
        path: source.to_string(),
        reason,
    };
    // an error inside a file that began as HDF5
    let damaged = |what: String, e: hdf5_pure::Error| {
        fmt(format!("{what}: {e} (the file is truncated or damaged)"))
    };
    if !hdf5_pure::is_hdf5_bytes(bytes) {
        return Err(fmt(
            "not an HDF5 file (no HDF5 signature); Keras writes one with \
             `model.save_weights(\"NAME.weights.h5\")`"
                .into(),
        ));
    }
    if let Some(eof) = stored_eof(bytes) {
        if (bytes.len() as u64) < eof {
            return Err(fmt(format!(
                "truncated: {} bytes where its superblock says the file ends at byte {eof}; write it again (Keras: `model.save_weights`)",
                bytes.len()
            )));
        }
    }
    let file = File::from_bytes(bytes.to_vec())
        .map_err(|e| damaged("not a readable HDF5 file".into(), e))?;
    let root = file.root();
    let top = root
        .groups()
        .map_err(|e| damaged("cannot list the file's groups".into(), e))?;
    if !top.iter().any(|g| g == "layers") {
        let legacy = top.iter().any(|g| g == "model_weights")
            || root.attrs().is_ok_and(|a| a.contains_key("layer_names"));
        return Err(fmt(if legacy {
            "Keras' legacy HDF5 format (`model_weights`/`layer_names`: tf.keras 2, or Keras 3's \
             `model.save(\"NAME.h5\")`), not the `.weights.h5` of Keras 3: load the model in \
             Keras 3 and save it with `model.save_weights(\"NAME.weights.h5\")`"
                .into()
        } else {
            format!(
                "no `layers` group (the file has {top:?}): not a Keras 3 `.weights.h5` \
                 written by `model.save_weights`"
            )
        }));
    }
    // every dataset under layers/
    let mut found: BTreeSet<String> = BTreeSet::new();
    let mut stack = vec![("layers".to_string(), 0usize)];
    let mut seen = 0usize;
    while let Some((path, depth)) = stack.pop() {
        if depth > MAX_DEPTH {
            return Err(fmt(format!(
                "`{path}` is nested deeper than Keras' layout (or the file's links loop)"
            )));
        }
        let g = file
            .group(&path)
            .map_err(|e| damaged(format!("cannot open group `{path}`"), e))?;
        let datasets = g
            .datasets()
            .map_err(|e| damaged(format!("cannot list group `{path}`"), e))?;
        let groups = g
            .groups()
            .map_err(|e| damaged(format!("cannot list group `{path}`"), e))?;
        seen += datasets.len() + groups.len();
        if seen > MAX_OBJECTS {
            return Err(fmt(format!(
                "more than {MAX_OBJECTS} objects under `layers/`: not the weights of a model \
                 this library can hold"
            )));
        }
        found.extend(datasets.into_iter().map(|d| format!("{path}/{d}")));
        stack.extend(
            groups
                .into_iter()
                .map(|s| (format!("{path}/{s}"), depth + 1)),
        );
    }
    let layer_of = |p: &str| p.split('/').nth(1).unwrap_or_default().to_string();
    let mut has: Vec<String> = found.iter().map(|p| layer_of(p)).collect();
    has.dedup();
    let mut expects: Vec<String> = Vec::new();
    for v in vars {
        let l = layer_of(&v.h5);
        if !expects.contains(&l) {
            expects.push(l);
        }
    }
    let mut tensors = BTreeMap::new();
    for v in vars {
        let shape = want
            .info(&v.key)
            .map(|t| t.shape.clone())
            .ok_or_else(|| Error::MissingTensor(v.key.clone()))?;
        if !found.remove(&v.h5) {
            return Err(fmt(format!(
                "no dataset `{}` ({}); the file has weights for the layers {has:?}, the \
                 configuration expects {expects:?} (Keras names them by class and order: \
                 is the configuration the one of the Keras model?)",
                v.h5,
                v.key.split_once('/').map_or(v.key.as_str(), |(_, k)| k)
            )));
        }
        let ds = file
            .dataset(&v.h5)
            .map_err(|e| damaged(format!("cannot open `{}`", v.h5), e))?;
        let dims = ds
            .shape()
            .map_err(|e| damaged(format!("cannot read the shape of `{}`", v.h5), e))?;
        if dims.len() != shape.len() || dims.iter().zip(&shape).any(|(&a, &b)| a != b as u64) {
            return Err(fmt(format!(
                "`{}` has shape {dims:?}, the configuration needs {shape:?}",
                v.h5
            )));
        }
        match ds.dtype() {
            Ok(DType::F32 | DType::F64) => {}
            Ok(other) => {
                return Err(fmt(format!(
                    "`{}` holds {other:?} values; only float32 (or float64) weights are read",
                    v.h5
                )))
            }
            Err(e) => return Err(damaged(format!("cannot read the type of `{}`", v.h5), e)),
        }
        let data = ds
            .read_f32()
            .map_err(|e| damaged(format!("cannot read `{}`", v.h5), e))?;
        if data.len() != shape.iter().product::<usize>() {
            return Err(fmt(format!(
                "`{}` holds {} values for shape {shape:?}",
                v.h5,
                data.len()
            )));
        }
        tensors.insert(v.key.clone(), (shape, TensorData::F32(data)));
    }
    if !found.is_empty() {
        return Err(fmt(format!(
            "weights the configuration has no place for (is it the configuration of the Keras \
             model?): {}",
            found.iter().take(8).cloned().collect::<Vec<_>>().join(", ")
        )));
    }
    Ok(TensorFile {
        source: source.to_string(),
        metadata: HashMap::new(),
        tensors,
    })
}
