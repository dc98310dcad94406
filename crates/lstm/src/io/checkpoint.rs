//! Safetensors in and out: parameters under their PyTorch names, and a reader for any
//! safetensors file (reference cases, imported weights).
//!
//! Loading never runs code and never panics on a malformed file: every problem is an
//! [`Error::Format`] naming the file.
//!
//! ```
//! use lstm::params::ParamStore;
//! use lstm::io::checkpoint::{to_bytes, TensorFile};
//! let mut store = ParamStore::default();
//! store.add("head.bias", &[2]);
//! store.values.copy_from_slice(&[1.5, -2.0]);
//! let bytes = to_bytes(&store, &Default::default()).unwrap();
//! let file = TensorFile::from_bytes(&bytes, "memory").unwrap();
//! assert_eq!(file.f32("head.bias").unwrap(), vec![1.5, -2.0]);
//! ```

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;

use crate::error::{Error, Result};
use crate::params::ParamStore;

/// One tensor read from a file.
#[derive(Clone, Debug, PartialEq)]
pub enum TensorData {
    /// `F32` values.
    F32(Vec<f32>),
    /// `I64` values.
    I64(Vec<i64>),
}

/// The tensors and metadata of a safetensors file, decoded.
#[derive(Clone, Debug, Default)]
pub struct TensorFile {
    /// Where it came from (for messages).
    pub source: String,
    /// The `__metadata__` map.
    pub metadata: HashMap<String, String>,
    /// Tensors by name: shape and data.
    pub tensors: BTreeMap<String, (Vec<usize>, TensorData)>,
}

impl TensorFile {
    /// Reads and decodes a file.
    ///
    /// # Errors
    /// [`Error::Io`] if unreadable, [`Error::Format`] if not valid safetensors or a tensor has a
    /// dtype other than `F32`/`I64`.
    pub fn read(path: &Path) -> Result<TensorFile> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_bytes(&bytes, &path.display().to_string())
    }

    /// Decodes bytes; `source` names them in errors.
    ///
    /// # Errors
    /// As [`Self::read`].
    pub fn from_bytes(bytes: &[u8], source: &str) -> Result<TensorFile> {
        let fmt = |reason: String| Error::Format {
            path: source.to_string(),
            reason,
        };
        // the crate's error names (`InvalidHeaderLength`, `MetadataIncompleteBuffer`...) say
        // little to a user: say what they mean
        let unreadable = |e: safetensors::SafeTensorError| {
            fmt(format!(
                "not a readable safetensors file ({e}): it is truncated, damaged or in another format; restore it from a copy or write it again"
            ))
        };
        // the files PyTorch and Keras save by default, named for what they are; a safetensors
        // file starts with its header's length (any bytes: 640 is `80 02 00 ...`, a pickle's
        // first two) and then the header's `{`
        let safetensors_like = bytes.get(8) == Some(&b'{');
        if bytes.starts_with(b"PK\x03\x04") && !safetensors_like {
            return Err(fmt(
                "a zip archive, not safetensors: PyTorch's `torch.save` (a .pt or .bin state_dict) or a Keras `.keras` model; save the weights with `safetensors.torch.save_file(model.state_dict(), \"m.safetensors\")` in PyTorch, or `model.save_weights(\"m.weights.h5\")` in Keras (`lstm import keras`)".into(),
            ));
        }
        if bytes.first() == Some(&0x80)
            && bytes.get(1).is_some_and(|v| (2..=5).contains(v))
            && !safetensors_like
        {
            return Err(fmt(
                "a Python pickle (PyTorch's legacy `torch.save` format), not safetensors: save the weights with `safetensors.torch.save_file(model.state_dict(), \"m.safetensors\")`".into(),
            ));
        }
        let st = SafeTensors::deserialize(bytes).map_err(unreadable)?;
        let (_, meta) = SafeTensors::read_metadata(bytes).map_err(unreadable)?;
        let metadata = meta.metadata().clone().unwrap_or_default();
        let mut tensors = BTreeMap::new();
        for (name, view) in st.tensors() {
            let shape = view.shape().to_vec();
            let data = view.data();
            let td = match view.dtype() {
                Dtype::F32 => TensorData::F32(
                    data.chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .collect(),
                ),
                Dtype::I64 => TensorData::I64(
                    data.chunks_exact(8)
                        .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
                        .collect(),
                ),
                // other floats, as PyTorch saves them after `.half()`, `.bfloat16()` or
                // `.double()`: widened (or rounded) to the f32 the engine computes in
                Dtype::F16 => TensorData::F32(
                    data.chunks_exact(2)
                        .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
                        .collect(),
                ),
                Dtype::BF16 => TensorData::F32(
                    data.chunks_exact(2)
                        .map(|c| f32::from_bits(u32::from(u16::from_le_bytes([c[0], c[1]])) << 16))
                        .collect(),
                ),
                Dtype::F64 => TensorData::F32(
                    data.chunks_exact(8)
                        .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32)
                        .collect(),
                ),
                other => {
                    return Err(fmt(format!(
                        "tensor `{name}` has dtype {other:?}; only floats (F32, F16, BF16, F64) and I64 are read: save it with `.float()`"
                    )))
                }
            };
            tensors.insert(name, (shape, td));
        }
        Ok(TensorFile {
            source: source.to_string(),
            metadata,
            tensors,
        })
    }

    /// Whether a tensor is present.
    pub fn has(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// Shape of a tensor.
    ///
    /// # Errors
    /// [`Error::MissingTensor`].
    pub fn shape(&self, name: &str) -> Result<&[usize]> {
        self.tensors
            .get(name)
            .map(|(s, _)| &s[..])
            .ok_or_else(|| Error::MissingTensor(name.to_string()))
    }

    /// An `F32` tensor's values.
    ///
    /// # Errors
    /// [`Error::MissingTensor`], or [`Error::Format`] if it is not `F32`.
    pub fn f32(&self, name: &str) -> Result<Vec<f32>> {
        match self.tensors.get(name) {
            Some((_, TensorData::F32(v))) => Ok(v.clone()),
            Some(_) => Err(Error::Format {
                path: self.source.clone(),
                reason: format!("tensor `{name}` is not F32"),
            }),
            None => Err(Error::MissingTensor(name.to_string())),
        }
    }

    /// An `I64` tensor's values.
    ///
    /// # Errors
    /// [`Error::MissingTensor`], or [`Error::Format`] if it is not `I64`.
    pub fn i64(&self, name: &str) -> Result<Vec<i64>> {
        match self.tensors.get(name) {
            Some((_, TensorData::I64(v))) => Ok(v.clone()),
            Some(_) => Err(Error::Format {
                path: self.source.clone(),
                reason: format!("tensor `{name}` is not I64"),
            }),
            None => Err(Error::MissingTensor(name.to_string())),
        }
    }

    /// A metadata value.
    ///
    /// # Errors
    /// [`Error::Format`] if absent.
    pub fn meta(&self, key: &str) -> Result<&str> {
        self.metadata
            .get(key)
            .map(|s| s.as_str())
            .ok_or_else(|| Error::Format {
                path: self.source.clone(),
                reason: format!("metadata `{key}` is missing"),
            })
    }

    /// Copies every tensor of `store` whose name (after `prefix`) is in this file.
    /// Returns how many were loaded; shapes must match.
    ///
    /// # Errors
    /// [`Error::Shape`] on a shape mismatch.
    pub fn load_into(&self, store: &mut ParamStore, prefix: &str) -> Result<usize> {
        let mut n = 0;
        let names: Vec<(String, Vec<usize>)> = store
            .tensors()
            .iter()
            .map(|t| (t.name.clone(), t.shape.clone()))
            .collect();
        for (name, shape) in names {
            let key = format!("{prefix}{name}");
            if let Some((s, TensorData::F32(v))) = self.tensors.get(&key) {
                if *s != shape {
                    return Err(Error::shape(key, format!("{shape:?}"), format!("{s:?}")));
                }
                store.set(&name, &shape, v)?;
                n += 1;
            }
        }
        Ok(n)
    }
}

/// Serialises the parameters of `store` (F32, their names and shapes) with `metadata`.
///
/// # Errors
/// [`Error::Format`] if the safetensors encoder refuses (it should not).
pub fn to_bytes(store: &ParamStore, metadata: &HashMap<String, String>) -> Result<Vec<u8>> {
    values_to_bytes(store.tensors(), &store.values, metadata)
}

/// Serialises `values`, laid out as `tensors` say (F32, their names and shapes: the layout of
/// a [`ParamStore`] whose values these are, or its gradients or optimizer moments), with
/// `metadata`. The values are read in place (no copy but the file's bytes).
///
/// # Errors
/// [`Error::Shape`] if `values` is shorter than the tensors; [`Error::Format`] if the
/// safetensors encoder refuses (it should not).
pub fn values_to_bytes(
    tensors: &[crate::params::TensorInfo],
    values: &[f32],
    metadata: &HashMap<String, String>,
) -> Result<Vec<u8>> {
    let need = tensors.iter().map(|t| t.range().end).max().unwrap_or(0);
    if values.len() < need {
        return Err(Error::shape("checkpoint values", need, values.len()));
    }
    // the file's bytes are little-endian f32: the values themselves on such a machine
    let le: std::borrow::Cow<'_, [f32]> = if cfg!(target_endian = "little") {
        std::borrow::Cow::Borrowed(values)
    } else {
        std::borrow::Cow::Owned(
            values
                .iter()
                .map(|v| f32::from_bits(v.to_bits().to_le()))
                .collect(),
        )
    };
    let bytes: &[u8] = bytemuck::cast_slice(&le);
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|t| {
            let r = t.range();
            TensorView::new(Dtype::F32, t.shape.clone(), &bytes[r.start * 4..r.end * 4])
                .map(|v| (t.name.clone(), v))
                .map_err(|e| Error::Format {
                    path: t.name.clone(),
                    reason: e.to_string(),
                })
        })
        .collect::<Result<_>>()?;
    let meta = if metadata.is_empty() {
        None
    } else {
        Some(metadata.clone())
    };
    let mut file = safetensors::serialize(views, &meta).map_err(|e| Error::Format {
        path: "checkpoint".into(),
        reason: e.to_string(),
    })?;
    if metadata.len() > 1 {
        sort_header(&mut file);
    }
    Ok(file)
}

/// Rewrites a safetensors file's JSON header with its keys in order (the metadata's came in
/// hash order), so that the same weights and metadata give the same bytes (an export's
/// checksum does not change from run to run). The header keeps its length: the same keys and
/// values, compact, padded with spaces as before.
fn sort_header(file: &mut [u8]) {
    let Some(n) = file
        .get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(|b| u64::from_le_bytes(b) as usize)
    else {
        return;
    };
    let Some(header) = file.get(8..8 + n) else {
        return;
    };
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(header) else {
        return;
    };
    fn sorted(v: serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => {
                let b: std::collections::BTreeMap<String, serde_json::Value> =
                    m.into_iter().map(|(k, v)| (k, sorted(v))).collect();
                serde_json::to_value(b).unwrap_or_default()
            }
            other => other,
        }
    }
    let Ok(text) = serde_json::to_string(&sorted(value)) else {
        return;
    };
    if text.len() <= n {
        file[8..8 + text.len()].copy_from_slice(text.as_bytes());
        file[8 + text.len()..8 + n].fill(b' ');
    }
}

/// An IEEE half-precision value as f32 (exact: every f16 is an f32).
fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let man = u32::from(h & 0x3ff);
    let bits = match (exp, man) {
        (0, 0) => sign,
        // subnormal: normalise
        (0, _) => {
            let shift = man.leading_zeros() - 21;
            let man = (man << shift) & 0x3ff;
            sign | ((127 - 15 + 1 - shift) << 23) | (man << 13)
        }
        (0x1f, 0) => sign | 0x7f80_0000,
        (0x1f, _) => sign | 0x7fc0_0000 | (man << 13),
        _ => sign | ((exp + 127 - 15) << 23) | (man << 13),
    };
    f32::from_bits(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_reference_values() {
        // IEEE 754 binary16 examples (Wikipedia, "Half-precision floating-point format")
        for (bits, want) in [
            (0x3c00u16, 1.0f32),
            (0xc000, -2.0),
            (0x7bff, 65504.0),
            (0x0001, 5.960_464_5e-8),
            (0x03ff, 6.097_555e-5),
            (0x0400, 6.103_515_6e-5),
            (0x3555, 0.333_251_95),
            (0x8000, -0.0),
            (0x7c00, f32::INFINITY),
            (0xfc00, f32::NEG_INFINITY),
        ] {
            assert_eq!(f16_to_f32(bits).to_bits(), want.to_bits(), "{bits:#06x}");
        }
        assert!(f16_to_f32(0x7e00).is_nan());
    }

    fn file(dtype: Dtype, data: &[u8]) -> Result<TensorFile> {
        let view = TensorView::new(dtype, vec![2], data).unwrap();
        let bytes = safetensors::serialize([("w", view)], &None).unwrap();
        TensorFile::from_bytes(&bytes, "w.safetensors")
    }

    #[test]
    fn other_float_widths_are_read_as_f32_and_foreign_files_named() {
        let want = [1.5f32, -0.25];
        let f16: Vec<u8> = [0x3e00u16, 0xb400]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let bf16: Vec<u8> = want
            .iter()
            .flat_map(|v| ((v.to_bits() >> 16) as u16).to_le_bytes())
            .collect();
        let f64: Vec<u8> = want
            .iter()
            .flat_map(|&v| f64::from(v).to_le_bytes())
            .collect();
        for (dtype, data) in [(Dtype::F16, f16), (Dtype::BF16, bf16), (Dtype::F64, f64)] {
            let t = file(dtype, &data).unwrap();
            match &t.tensors["w"].1 {
                TensorData::F32(v) => assert_eq!(v, &want, "{dtype:?}"),
                other => panic!("{dtype:?}: {other:?}"),
            }
        }
        let e = file(Dtype::I32, &[0; 8]).err().unwrap().to_string();
        assert!(e.contains("`.float()`"), "{e}");
        // torch.save's zip and legacy pickle files
        let zip = TensorFile::from_bytes(b"PK\x03\x04rest", "m.pt")
            .err()
            .unwrap()
            .to_string();
        assert!(
            zip.contains("torch.save") && zip.contains("save_file"),
            "{zip}"
        );
        let pickle = TensorFile::from_bytes(&[0x80, 0x02, 0x8a, 0x0a], "m.bin")
            .err()
            .unwrap()
            .to_string();
        assert!(pickle.contains("pickle"), "{pickle}");
        // a safetensors file whose header is 640 bytes starts as a pickle does: read as what
        // it is
        let mut header = format!(
            "{{\"w\":{{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}},\"__metadata__\":{{\"pad\":\"{}\"}}}}",
            "x".repeat(560)
        );
        while header.len() < 640 {
            header.push(' ');
        }
        assert_eq!(header.len(), 640);
        let mut st = 640u64.to_le_bytes().to_vec();
        assert_eq!(&st[..2], &[0x80, 0x02]);
        st.extend_from_slice(header.as_bytes());
        st.extend_from_slice(&1.0f32.to_le_bytes());
        let t = TensorFile::from_bytes(&st, "w.safetensors").unwrap();
        assert_eq!(t.tensors["w"].1, TensorData::F32(vec![1.0]));
    }
}
