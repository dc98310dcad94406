//! Pages and plots: the self-contained HTML pages of `explain`, `explore` and `report`, and the
//! SVG/PNG line charts.

pub mod html;
pub mod plot;
