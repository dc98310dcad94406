//! One flat buffer for all parameters, one for their gradients, with named views.
//!
//! Every layer registers its tensors here under PyTorch's names and keeps only their ranges.
//! Optimizers, clipping, zeroing and checkpoints are then single loops over one slice.
//!
//! ```
//! use lstm::params::ParamStore;
//! let mut store = ParamStore::default();
//! let w = store.add("head.weight", &[3, 2]); // (out, in)
//! store.values[w.clone()].fill(1.0);
//! assert_eq!(store.get("head.weight").unwrap(), &[1.0; 6]);
//! assert_eq!(store.grads.len(), 6);
//! ```

pub mod init;

use std::ops::Range;

use crate::error::{Error, Result};

/// Name, shape and place of one tensor in a [`ParamStore`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    /// PyTorch-style name, e.g. `lstm.weight_ih_l0`.
    pub name: String,
    /// Shape, row-major.
    pub shape: Vec<usize>,
    /// Where its values start in the flat buffers.
    pub offset: usize,
}

impl TensorInfo {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Its range in the flat buffers.
    pub fn range(&self) -> Range<usize> {
        self.offset..self.offset + self.len()
    }
}

/// All parameters of a model in one `Vec<f32>`, their gradients in a second of the same layout.
#[derive(Clone, Debug, Default)]
pub struct ParamStore {
    /// Parameter values.
    pub values: Vec<f32>,
    /// Gradients, same layout as `values`.
    pub grads: Vec<f32>,
    tensors: Vec<TensorInfo>,
    /// Each name's position in `tensors` (a stack of thousands of layers looks names up often).
    index: std::collections::HashMap<String, usize>,
}

impl ParamStore {
    /// Registers a zero-initialised tensor and returns its range.
    ///
    /// # Panics
    /// If a tensor of this name is already registered (two tensors of one name would save as
    /// one), or if the tensor's size overflows `usize`: programming errors, which the layers'
    /// constructors check first and return as errors.
    pub fn add(&mut self, name: &str, shape: &[usize]) -> Range<usize> {
        assert!(
            self.info(name).is_none(),
            "a tensor named {name:?} is already registered in this store"
        );
        let size = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        assert!(
            size.and_then(|n| n.checked_add(self.values.len()))
                .is_some(),
            "the tensor {name:?} of shape {shape:?} is too large to address"
        );
        let offset = self.values.len();
        let info = TensorInfo {
            name: name.to_string(),
            shape: shape.to_vec(),
            offset,
        };
        let r = info.range();
        self.values.resize(r.end, 0.0);
        self.grads.resize(r.end, 0.0);
        self.index.insert(info.name.clone(), self.tensors.len());
        self.tensors.push(info);
        r
    }

    /// The registered tensors, in registration order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// Looks a tensor up by name.
    pub fn info(&self, name: &str) -> Option<&TensorInfo> {
        self.index.get(name).map(|&i| &self.tensors[i])
    }

    /// The values of a named tensor.
    pub fn get(&self, name: &str) -> Option<&[f32]> {
        self.info(name).map(|t| &self.values[t.range()])
    }

    /// The gradient of a named tensor.
    pub fn grad(&self, name: &str) -> Option<&[f32]> {
        self.info(name).map(|t| &self.grads[t.range()])
    }

    /// Overwrites a named tensor's values.
    ///
    /// # Errors
    /// [`Error::MissingTensor`] if no such tensor, [`Error::Shape`] if `shape` differs.
    pub fn set(&mut self, name: &str, shape: &[usize], data: &[f32]) -> Result<()> {
        let info = self
            .info(name)
            .ok_or_else(|| Error::MissingTensor(name.to_string()))?
            .clone();
        if info.shape != shape {
            return Err(Error::shape(
                name,
                format!("{:?}", info.shape),
                format!("{shape:?}"),
            ));
        }
        if data.len() != info.len() {
            return Err(Error::shape(
                format!("{name}'s data"),
                format!("{} values (shape {:?})", info.len(), info.shape),
                format!("{} values", data.len()),
            ));
        }
        self.values[info.range()].copy_from_slice(data);
        Ok(())
    }

    /// Checks that `values` and `grads` (public, so a caller may resize them) still hold every
    /// registered tensor.
    ///
    /// # Errors
    /// [`Error::Shape`] naming the buffer.
    pub fn check_buffers(&self) -> Result<()> {
        let need = self.tensors.last().map_or(0, |t| t.range().end);
        for (what, len) in [
            ("parameter values", self.values.len()),
            ("parameter gradients", self.grads.len()),
        ] {
            if len != need {
                return Err(Error::shape(what, need, len));
            }
        }
        Ok(())
    }

    /// Sets every gradient to zero.
    pub fn zero_grad(&mut self) {
        self.grads.fill(0.0);
    }

    /// Total number of parameters.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the store holds no parameter.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}
