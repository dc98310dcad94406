//! Pages and plots: the self-contained HTML pages of `explain`, `explore` and `report`, and the
//! SVG/PNG line charts (`plot`, with the cargo feature `plots`: the `plotters` crate and its
//! bundled font).

pub mod html;
#[cfg(feature = "plots")]
pub mod plot;
