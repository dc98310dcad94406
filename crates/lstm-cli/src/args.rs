//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// LSTM, GRU and RNN networks on the CPU: train a character model, a forecaster or a
/// classifier, use it, evaluate it, and measure the speed.
#[derive(Parser, Debug)]
#[command(name = "lstm", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Train a model. With no job named, trains a character model on the bundled Shakespeare.
    Train(TrainCmd),
    /// Generate text from a text model, streamed to stdout.
    Generate(GenerateArgs),
    /// Forecast the steps after the end of a series with a forecast model.
    Forecast(ForecastArgs),
    /// Classify texts with a classification model.
    Classify(ClassifyArgs),
    /// Score a model on a data file (the metric of its task).
    Eval(EvalArgs),
    /// Measure training and generation speed on the standard configurations.
    Bench(BenchArgs),
    /// Write a model's weights for PyTorch or Keras, or the whole model as an ONNX graph.
    Export(ExportArgs),
    /// Make a model directory from PyTorch or Keras weights.
    Import(ImportArgs),
    /// Reproduce why LSTMs exist: long-term dependency tasks, vanishing gradients, variants.
    Experiment(ExperimentCmd),
    /// Write an HTML page that shows a text model's cells at work on a text.
    Explain(ExplainArgs),
    /// Write an HTML page with one interactive LSTM cell (a made-up one or a trained unit).
    Explore(ExploreArgs),
    /// Write an HTML page with a model's training plots (loss curve, and any --plot files).
    Report(ReportArgs),
    /// Serve models over HTTP: OpenAI-compatible completions with continuous batching,
    /// batched forecasts and classifications (docs/serve.md).
    Serve(lstm_serve::ServeArgs),
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Model directory.
    #[arg(long)]
    pub model: PathBuf,
    /// More plots to show (PNG or SVG), e.g. from `lstm forecast --plot F.png`; repeatable.
    #[arg(long)]
    pub plot: Vec<PathBuf>,
    /// HTML file to write.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["text", "prime"])))]
pub struct ExplainArgs {
    /// Model directory (from `lstm train text`, an LSTM).
    #[arg(long)]
    pub model: PathBuf,
    /// Text file to run the model on.
    #[arg(long)]
    pub text: Option<PathBuf>,
    /// Text to run the model on, given inline.
    #[arg(long)]
    pub prime: Option<String>,
    /// Use at most this many tokens of the text (the page holds 6 numbers per unit and token).
    #[arg(long, default_value_t = 1500)]
    pub max_tokens: usize,
    /// HTML file to write.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Args, Debug)]
pub struct ExploreArgs {
    /// Model directory: show one of its units with its trained weights.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Layer of the unit (from 0).
    #[arg(long, default_value_t = 0, requires = "model")]
    pub layer: usize,
    /// Unit within the layer (from 0).
    #[arg(long, default_value_t = 0, requires = "model")]
    pub unit: usize,
    /// HTML file to write.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ExportFormat {
    /// safetensors in PyTorch's names and layout, with the model's config.json in its metadata.
    Pytorch,
    /// Keras 3: with --out NAME.weights.h5 (a `.h5` or `.hdf5` name), Keras' own weights file
    /// (`model.load_weights`); another name writes safetensors in Keras' layout
    /// (docs/interop.md).
    Keras,
    /// An ONNX graph of the whole model (opset 14).
    Onnx,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// pytorch, keras or onnx.
    pub format: ExportFormat,
    /// Model directory.
    #[arg(long)]
    pub model: PathBuf,
    /// File to write (keras: a `.h5` or `.hdf5` name for Keras' own weights file, as
    /// `NAME.weights.h5`; another name writes safetensors in Keras' layout, docs/interop.md).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ImportFormat {
    /// safetensors with PyTorch's names (`lstm.weight_ih_l0`, ... or a bare nn.LSTM's).
    Pytorch,
    /// Keras 3: a `.weights.h5` from `model.save_weights` (needs --config), or safetensors in
    /// Keras' layout (see docs/interop.md).
    Keras,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// pytorch or keras.
    pub format: ImportFormat,
    /// The weights: safetensors, or Keras' `.weights.h5`.
    #[arg(long)]
    pub weights: PathBuf,
    /// config.json describing the network and its task (default: the one stored in the
    /// weights' metadata by `lstm export pytorch`; required for Keras files, a `.weights.h5` or
    /// the safetensors `lstm export keras` writes).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Model directory to create.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct TrainCmd {
    #[command(subcommand)]
    pub job: Option<TrainJob>,
    /// Options of the default job (a character model on the bundled Shakespeare).
    #[command(flatten)]
    pub default: TextArgs,
}

#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum TrainJob {
    /// A character-level language model on a text file.
    Text(TextArgs),
    /// A forecaster on columns of a CSV file.
    Forecast(ForecastTrainArgs),
    /// A classifier on a text column and a label column of a TSV file.
    Classify(ClassifyTrainArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
pub enum CellArg {
    Lstm,
    Gru,
    Rnn,
    RnnRelu,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum VariantArg {
    Standard,
    Peephole,
    Coupled,
    PeepholeCoupled,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum OptimizerArg {
    Adam,
    Adamw,
    Sgd,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ScheduleArg {
    Constant,
    Cosine,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum TransformArg {
    None,
    Log,
    Diff,
    LogDiff,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ForecasterArg {
    Global,
    Window,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ScalingArg {
    Auto,
    MeanAbs,
    Standard,
    Trend,
    LogTrend,
    Seasonal,
    LogSeasonal,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum DistributionArg {
    Gaussian,
    StudentT,
    NegativeBinomial,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum PrecisionArg {
    F32,
    Bf16,
}

impl From<PrecisionArg> for lstm::kernels::Precision {
    fn from(p: PrecisionArg) -> Self {
        match p {
            PrecisionArg::F32 => lstm::kernels::Precision::F32,
            PrecisionArg::Bf16 => lstm::kernels::Precision::Bf16,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum NonFiniteArg {
    Stop,
    Skip,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum TokensArg {
    Char,
    Word,
}

/// Options shared by every training job. Unset options come from `--config`, then from the
/// job's defaults (shown by `lstm train <job> --help` in the README).
#[derive(Args, Debug, Clone, Default)]
pub struct CommonTrain {
    /// Directory to write the model into (new or empty); required, except with --resume (which
    /// continues in its DIR unless --out names another) and for bare `lstm train` (which writes
    /// models/shakespeare).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// TOML file with any of the settings below (flags given here win).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Continue training the model in DIR from its last checkpoint (same data, same seed): give
    /// the original command line with a new budget; only the budget, --save-every, --threads,
    /// --on-nonfinite, --quiet and --out (continue into another directory) may differ from the
    /// saved settings.
    #[arg(long, value_name = "DIR")]
    pub resume: Option<PathBuf>,
    /// Recurrent cell [default: lstm].
    #[arg(long, value_enum)]
    pub cell: Option<CellArg>,
    /// LSTM variant [default: standard].
    #[arg(long, value_enum)]
    pub variant: Option<VariantArg>,
    /// Stacked layers [default: text 2, forecast 2, classify 1].
    #[arg(long)]
    pub layers: Option<usize>,
    /// Units per layer [default: text 256, forecast 40, classify 64; a text model of --minutes 10
    /// or more 512 (when none of --layers, --hidden, --dropout and --lr-schedule is given), the
    /// global forecaster 64 from 10,000 training windows (when neither --hidden nor
    /// --lr-schedule is given)]. A value given is kept, even the default's.
    #[arg(long)]
    pub hidden: Option<usize>,
    /// LSTM projection size (0 = none) [default: 0].
    #[arg(long)]
    pub proj: Option<usize>,
    /// Sequences per batch [default: text 32, forecast 64, classify 32].
    #[arg(long)]
    pub batch: Option<usize>,
    /// Learning rate [default: text 0.002, forecast 0.001, classify 0.002].
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f32>,
    /// Optimizer [default: adam].
    #[arg(long, value_enum)]
    pub optimizer: Option<OptimizerArg>,
    /// Weight decay [default: 0].
    #[arg(long, allow_negative_numbers = true)]
    pub weight_decay: Option<f32>,
    /// Learning-rate schedule over the budget [default: constant; classify cosine] (cosine too
    /// for a text model of --minutes 10 or more and the global forecaster from 10,000 training
    /// windows, as --hidden says).
    #[arg(long, value_enum)]
    pub lr_schedule: Option<ScheduleArg>,
    /// Dropout between layers and before the output layer [default: text 0.1, forecast 0.1,
    /// classify 0.5; a text model of --minutes 10 or more 0.4, as --hidden says; the global
    /// forecaster none from 10,000 training windows, unless --dropout is given].
    #[arg(long, allow_negative_numbers = true)]
    pub dropout: Option<f32>,
    /// Variational dropout on the hidden-to-hidden path (Keras' recurrent_dropout) [default: 0].
    #[arg(long, allow_negative_numbers = true)]
    pub recurrent_dropout: Option<f32>,
    /// Clip the global gradient norm (0 = off) [default: 5].
    #[arg(long, allow_negative_numbers = true)]
    pub clip: Option<f32>,
    /// Seed for weights, batches and dropout [default: 1].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Threads (0 = all cores) [default: 0].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Budget in minutes of training steps (reading the data, validation, samples, saving, and
    /// a small forecaster's candidate scalings come on top) [default: text 4; forecast and
    /// classify use --epochs].
    #[arg(long, allow_negative_numbers = true)]
    pub minutes: Option<f64>,
    /// Budget in optimizer steps (counted from the start of training, also after --resume).
    /// Given with --minutes or --epochs, training ends at whichever is reached first.
    #[arg(long)]
    pub steps: Option<u64>,
    /// Budget in passes over the training data [default: forecast: global by its rule, window 300; classify 8].
    #[arg(long, allow_negative_numbers = true)]
    pub epochs: Option<f64>,
    /// Write a checkpoint every N steps (one is always written at the end).
    #[arg(long, value_name = "STEPS")]
    pub save_every: Option<u64>,
    /// Validate every N steps [default: text 250, forecast 100, classify 100].
    #[arg(long, value_name = "STEPS")]
    pub eval_every: Option<u64>,
    /// Fraction held out for validation when no --val file is given [default: text 0.1, forecast
    /// 0.15, classify 0.1]. Text, classify and --forecaster window: the global forecaster
    /// validates on each series' last window.
    #[arg(long)]
    pub val_fraction: Option<f32>,
    /// Text and classify: the last fraction of --data that training never reads, neither to
    /// train nor to validate on (the validation split is carved before it): a test set for
    /// `lstm eval --tail` with the same fraction [default: 0, none].
    #[arg(long, value_name = "FRACTION", allow_negative_numbers = true)]
    pub tail: Option<f64>,
    /// When a batch gives a NaN or infinite loss or gradient: stop (the last checkpoint is
    /// kept) or skip the batch [default: stop].
    #[arg(long, value_enum, value_name = "WHAT")]
    pub on_nonfinite: Option<NonFiniteArg>,
    /// The recurrent layers' and the head's matrix products in bf16 with f32 sums (mixed
    /// precision, as PyTorch's autocast; the cells, the loss, the weights and the optimizer stay
    /// f32): faster on a CPU with AVX-512 BF16 or AMX, refused on one without [default: f32].
    #[arg(long, value_enum)]
    pub precision: Option<PrecisionArg>,
    /// No progress bar, no samples: only errors and the final summary.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Args, Debug, Clone, Default)]
pub struct TextArgs {
    /// Text file (UTF-8) to learn from; required by `lstm train text` (bare `lstm train`, the
    /// default job, reads the bundled tinyshakespeare.txt).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Validation text (default: the last --val-fraction of --data).
    #[arg(long)]
    pub val: Option<PathBuf>,
    /// Characters per training sequence [default: 64].
    #[arg(long)]
    pub seq_len: Option<usize>,
    /// Print a sample every N steps (0 = never) [default: 500].
    #[arg(long, value_name = "STEPS")]
    pub sample_every: Option<u64>,
    #[command(flatten)]
    pub common: CommonTrain,
}

#[derive(Args, Debug, Clone)]
pub struct ForecastTrainArgs {
    /// CSV file with a header row: one series (a column per variable) or many in long format
    /// (--id-column).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// The column to forecast (--forecaster window: several, comma-separated; the first is
    /// forecast).
    #[arg(long, value_delimiter = ',')]
    pub column: Vec<String>,
    /// The time column: a date (YYYY-MM, YYYY-MM-DD), a date and time, or an integer index;
    /// its frequency gives the season.
    #[arg(long, visible_alias = "time-column")]
    pub date_column: Option<String>,
    /// The series id column of a long-format file: one model over all its series.
    #[arg(long)]
    pub id_column: Option<String>,
    /// Columns known in advance (a price, a holiday flag), comma-separated; the file to
    /// forecast from must hold them for the forecast steps too.
    #[arg(long, value_delimiter = ',')]
    pub known_columns: Vec<String>,
    /// The model: `global` (one model over many series, forecast distributions) or `window`
    /// (the earlier point forecaster of one table) [default: global].
    #[arg(long, value_enum)]
    pub forecaster: Option<ForecasterArg>,
    /// The season in steps [default: from the time column: hourly 24, daily 7, business daily 5,
    /// weekly 52, monthly 12, quarterly 4; every n minutes the steps in a day (minute data:
    /// 1440), every n months the steps in a year; none for an index].
    #[arg(long)]
    pub season: Option<usize>,
    /// Global: steps of history before each forecast [default: max(2·horizon, 3·season)].
    #[arg(long)]
    pub context: Option<usize>,
    /// Global: the forecast distribution [default: student-t]; `negative-binomial` for counts
    /// (whole numbers at or above 0; scaled by their mean absolute value).
    #[arg(long, value_enum)]
    pub distribution: Option<DistributionArg>,
    /// Global: how each window is scaled: `mean-abs` (divided by its mean absolute value),
    /// `standard` (centred, divided by its standard deviation), `trend` (less the context's
    /// least-squares line), `seasonal` (less the seasonal naive forecast), `log-trend` and
    /// `log-seasonal` (the same on the logarithm), or `auto`: mean-abs for large data, else
    /// chosen on the training data's last horizons (docs/forecasting.md) [default: auto].
    #[arg(long, value_enum)]
    pub scaling: Option<ScalingArg>,
    /// Global: learn an embedding of each series' id of this size (0: sized by the number of
    /// series, min(16, ceil(sqrt(series)))) [default: none].
    #[arg(long)]
    pub id_embedding: Option<usize>,
    /// Window: input window (past steps the model sees) [default: 24].
    #[arg(long)]
    pub window: Option<usize>,
    /// Steps forecast at once [default: global: two seasons (12 without one); window: 1].
    #[arg(long)]
    pub horizon: Option<usize>,
    /// Steps at the end of each series (of its values: later rows holding only known columns
    /// do not count) never used for training (a test set for `lstm eval`) [default: 0].
    #[arg(long)]
    pub holdout: Option<usize>,
    /// Window: transform before scaling [default: none].
    #[arg(long, value_enum)]
    pub transform: Option<TransformArg>,
    /// Bidirectional layers.
    #[arg(long)]
    pub bidirectional: bool,
    #[command(flatten)]
    pub common: CommonTrain,
}

#[derive(Args, Debug, Clone)]
pub struct ClassifyTrainArgs {
    /// TSV (or CSV) file with a header row.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Validation file (default: the last --val-fraction of the rows).
    #[arg(long)]
    pub val: Option<PathBuf>,
    /// The text column [default: text].
    #[arg(long)]
    pub text_column: Option<String>,
    /// The label column [default: label].
    #[arg(long)]
    pub label_column: Option<String>,
    /// Token kind [default: word].
    #[arg(long, value_enum)]
    pub tokens: Option<TokensArg>,
    /// Embedding size (0 = one-hot tokens) [default: 100].
    #[arg(long)]
    pub embedding: Option<usize>,
    /// Longest text kept, in tokens [default: 256].
    #[arg(long)]
    pub max_len: Option<usize>,
    /// Models trained from seeds derived from --seed and saved in one model directory; `lstm
    /// classify`, `lstm eval`, Python and the server average their class probabilities (1 = one
    /// model; needs --epochs or --steps, a --minutes budget trains one) [default: 10].
    #[arg(long)]
    pub members: Option<usize>,
    /// Bidirectional layers.
    #[arg(long)]
    pub bidirectional: bool,
    #[command(flatten)]
    pub common: CommonTrain,
}

#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// Model directory (from `lstm train text`).
    #[arg(long)]
    pub model: PathBuf,
    /// Text to start from.
    #[arg(long, default_value = "\n")]
    pub prime: String,
    /// Characters to generate.
    #[arg(long, default_value_t = 500)]
    pub length: usize,
    /// Sampling temperature (> 0; lower is more conservative).
    #[arg(long, default_value_t = 0.8, allow_negative_numbers = true, value_parser = temperature_arg)]
    pub temperature: f32,
    /// Sample only among the K most likely characters (0 = all).
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    /// Seed of the sampler.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Threads: the weights are split across them (0 = all cores).
    #[arg(long, default_value_t = 0, value_parser = threads_arg)]
    pub threads: usize,
    /// Store the weights in bfloat16 for generation: about 1.7x faster per token on CPUs with
    /// AVX-512 BF16, slightly less accurate (see docs/performance.md).
    #[arg(long)]
    pub bf16: bool,
}

#[derive(Args, Debug)]
pub struct ForecastArgs {
    /// Model directory (from `lstm train forecast`).
    #[arg(long)]
    pub model: PathBuf,
    /// CSV with at least the model's columns; the forecast starts after its last row (a global
    /// forecaster's: after each series' last value, later rows giving the known columns of the
    /// forecast steps).
    #[arg(long)]
    pub data: PathBuf,
    /// Steps to forecast [default: the model's horizon].
    #[arg(long)]
    pub steps: Option<usize>,
    /// Global forecaster: quantile levels to write beside the median, comma-separated, each
    /// as a column `q<level>` [default: 0.025,0.975, the 95% interval].
    #[arg(long, value_delimiter = ',')]
    pub quantiles: Vec<f64>,
    /// Write the forecast as CSV here (default: stdout).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Draw history and forecast into this PNG or SVG file.
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ClassifyArgs {
    /// Model directory (from `lstm train classify`).
    #[arg(long)]
    pub model: PathBuf,
    /// Texts to classify.
    pub texts: Vec<String>,
    /// Or a TSV file whose text column (the model's) is classified.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// The --data file's text column, when it is named otherwise than the training file's.
    #[arg(long, requires = "data")]
    pub text_column: Option<String>,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Model directory.
    #[arg(long)]
    pub model: PathBuf,
    /// Data file of the model's kind (text, CSV or TSV).
    #[arg(long)]
    pub data: PathBuf,
    /// Score only the last fraction of the file (text: of the characters; classify: of the rows).
    #[arg(long)]
    pub tail: Option<f64>,
    /// Text: read the text as parallel streams with the state carried between windows
    /// (default: windows of --seq-len scored from a zero state, the stricter figure).
    #[arg(long)]
    pub stream: bool,
    /// Text: score the text as one stream through the batch-1 generator that `lstm generate`
    /// uses, with its weights in this precision (f32 or bf16): what `--bf16` costs.
    #[arg(long, value_parser = ["f32", "bf16"], conflicts_with = "stream")]
    pub generator: Option<String>,
    /// Window forecaster (`--forecaster window`): score the last N rows [default: the model's holdout, else its horizon]; a global forecaster is scored with --windows.
    #[arg(long)]
    pub holdout: Option<usize>,
    /// Global forecaster: rolling forecast origins at the end of each series, one horizon
    /// apart (a backtest) [default: 1].
    #[arg(long)]
    pub windows: Option<usize>,
    /// Classifier: the file's text column, when it is named otherwise than the training file's.
    #[arg(long)]
    pub text_column: Option<String>,
    /// Classifier: the file's label column, when it is named otherwise than the training
    /// file's.
    #[arg(long)]
    pub label_column: Option<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Global forecaster: also write each series' scores in each window to this CSV file (the
    /// id, window, start, observed, the model's smape, mase, mape, rmse, quantile_loss,
    /// coverage_95, msis, and seasonal naive's smape and mase).
    #[arg(long, value_name = "FILE")]
    pub per_series: Option<PathBuf>,
    /// Global forecaster: also write each window's forecasts beside the actuals to this CSV
    /// file (the id and time columns, cutoff, the actual under the target's name, median, and
    /// the quantiles q0.025 to q0.975), as NeuralForecast's cross_validation gives them.
    #[arg(long, value_name = "FILE")]
    pub forecasts: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Threads to use (0 = all cores).
    #[arg(long, default_value_t = 0, value_parser = threads_arg)]
    pub threads: usize,
    /// Run only these configurations (comma-separated), e.g. charlm-2x256,generate-2x256.
    #[arg(long, value_delimiter = ',')]
    pub config: Vec<String>,
    /// Print one JSON object per configuration instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Seconds of timed work per configuration (after warm-up).
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
    /// Minimum timed repetitions per configuration (at most 100000).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub min_reps: u32,
    /// The training configurations' recurrent products in this precision (bf16: mixed
    /// precision, as `lstm train --precision bf16`); the results are named with `-bf16`.
    #[arg(long, value_enum, default_value = "f32")]
    pub precision: PrecisionArg,
    /// Instead of the configurations: charlm-2x256 training at batch 1, 8, 32, 128 and sequence
    /// length 16, 64, 256, then its activation memory against the sequence length with full
    /// and truncated backpropagation through time.
    #[arg(long, conflicts_with = "config")]
    pub scaling: bool,
    /// Instead of running anything: summarise the JSON lines of a side-by-side run against
    /// PyTorch and ONNX Runtime (`docs/side-by-side.sh`, its `$OUT` file) as a Markdown table
    /// of medians and ratios.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["config", "scaling"])]
    pub summarize: Option<std::path::PathBuf>,
}

#[derive(Args, Debug)]
pub struct ExperimentCmd {
    #[command(subcommand)]
    pub which: ExperimentKind,
}

#[derive(Subcommand, Debug)]
pub enum ExperimentKind {
    /// The adding problem: carry two marked numbers across T steps and add them; test MSE
    /// against the 0.167 of always answering 1.0.
    Adding(AddingArgs),
    /// The temporal-order task of Hochreiter & Schmidhuber (1997): which of X/Y came first and
    /// second among distractors; test accuracy against chance (25%).
    #[command(alias = "copy")]
    Order(OrderArgs),
    /// The norm of dLoss/dx_t for every step t, untrained and trained, on a log scale.
    Gradients(GradientArgs),
    /// LSTM variants, GRU and RNN trained with the same budget on a character corpus.
    Variants(VariantsArgs),
}

/// Options every experiment shares.
#[derive(Args, Debug, Clone)]
pub struct ExperimentCommon {
    /// Directory for the Markdown table and the plot.
    #[arg(long, default_value = "experiments")]
    pub out: PathBuf,
    /// Draw the plot as PNG instead of SVG.
    #[arg(long)]
    pub png: bool,
    /// Print one JSON object per run instead of the table.
    #[arg(long)]
    pub json: bool,
    /// No progress lines on stderr.
    #[arg(long)]
    pub quiet: bool,
    /// Threads (0 = all cores).
    #[arg(long, default_value_t = 0, value_parser = threads_arg)]
    pub threads: usize,
}

#[derive(Args, Debug)]
pub struct AddingArgs {
    /// Cells to train, comma-separated (one run each).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "lstm,gru,rnn"
    )]
    pub cell: Vec<CellArg>,
    /// LSTM variant.
    #[arg(long, value_enum, default_value = "standard")]
    pub variant: VariantArg,
    /// Sequence length T.
    #[arg(long, default_value_t = 100)]
    pub length: usize,
    /// Training steps (the budget).
    #[arg(long, default_value_t = 3000)]
    pub steps: u64,
    /// Seeds, comma-separated (one run each).
    #[arg(long, value_delimiter = ',', default_value = "1")]
    pub seed: Vec<u64>,
    /// Hidden units.
    #[arg(long, default_value_t = 128)]
    pub hidden: usize,
    /// Sequences per batch.
    #[arg(long, default_value_t = 50)]
    pub batch: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 5e-3)]
    pub lr: f32,
    /// Clip the global gradient norm (0 = off).
    #[arg(long, default_value_t = 1.0)]
    pub clip: f32,
    /// LSTM forget-gate bias at initialisation.
    #[arg(long, default_value_t = 1.0)]
    pub forget_bias: f32,
    /// Initialisation of the recurrent layer.
    #[arg(long, value_enum, default_value = "xavier-orthogonal")]
    pub init: InitArg,
    /// Evaluate the test MSE every N steps.
    #[arg(long, default_value_t = 100)]
    pub eval_every: u64,
    /// Held-out test sequences.
    #[arg(long, default_value_t = 500)]
    pub test_size: usize,
    /// Test MSE that counts as solved.
    #[arg(long, default_value_t = 0.01)]
    pub target: f32,
    /// Stop a run as soon as it is solved.
    #[arg(long)]
    pub stop_at_target: bool,
    #[command(flatten)]
    pub common: ExperimentCommon,
}

#[derive(Args, Debug)]
pub struct OrderArgs {
    /// Cells to train, comma-separated (one run each).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "lstm,gru,rnn"
    )]
    pub cell: Vec<CellArg>,
    /// LSTM variant.
    #[arg(long, value_enum, default_value = "standard")]
    pub variant: VariantArg,
    /// Sequence length T (at least 10).
    #[arg(long, default_value_t = 100)]
    pub length: usize,
    /// Training steps (the budget).
    #[arg(long, default_value_t = 2000)]
    pub steps: u64,
    /// Seeds, comma-separated (one run each).
    #[arg(long, value_delimiter = ',', default_value = "1")]
    pub seed: Vec<u64>,
    /// Hidden units.
    #[arg(long, default_value_t = 64)]
    pub hidden: usize,
    /// Sequences per batch.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 3e-3)]
    pub lr: f32,
    /// Clip the global gradient norm (0 = off).
    #[arg(long, default_value_t = 1.0)]
    pub clip: f32,
    /// LSTM forget-gate bias at initialisation.
    #[arg(long, default_value_t = 1.0)]
    pub forget_bias: f32,
    /// Evaluate the test accuracy every N steps.
    #[arg(long, default_value_t = 100)]
    pub eval_every: u64,
    /// Held-out test sequences.
    #[arg(long, default_value_t = 500)]
    pub test_size: usize,
    /// Test accuracy that counts as solved (0-1).
    #[arg(long, default_value_t = 0.99)]
    pub target: f32,
    /// Stop a run as soon as it is solved.
    #[arg(long)]
    pub stop_at_target: bool,
    #[command(flatten)]
    pub common: ExperimentCommon,
}

#[derive(Args, Debug)]
pub struct GradientArgs {
    /// Cells to measure, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "lstm,gru,rnn"
    )]
    pub cell: Vec<CellArg>,
    /// LSTM variant.
    #[arg(long, value_enum, default_value = "standard")]
    pub variant: VariantArg,
    /// Sequence length T.
    #[arg(long, default_value_t = 100)]
    pub length: usize,
    /// Steps of adding-problem training before the second measurement (0 = untrained only).
    #[arg(long, default_value_t = 1000)]
    pub steps: u64,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Hidden units.
    #[arg(long, default_value_t = 128)]
    pub hidden: usize,
    /// Sequences the gradient is measured on.
    #[arg(long, default_value_t = 100)]
    pub probe_batch: usize,
    /// Training batch.
    #[arg(long, default_value_t = 50)]
    pub batch: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 5e-3)]
    pub lr: f32,
    /// Clip the global gradient norm (0 = off).
    #[arg(long, default_value_t = 1.0)]
    pub clip: f32,
    /// LSTM forget-gate bias at initialisation.
    #[arg(long, default_value_t = 1.0)]
    pub forget_bias: f32,
    /// Initialisation of the recurrent layer.
    #[arg(long, value_enum, default_value = "xavier-orthogonal")]
    pub init: InitArg,
    #[command(flatten)]
    pub common: ExperimentCommon,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum InitArg {
    /// Xavier/Glorot input weights, orthogonal recurrent weights, forget bias --forget-bias.
    XavierOrthogonal,
    /// PyTorch's default: every parameter U(-1/sqrt(H), 1/sqrt(H)).
    Pytorch,
}

#[derive(Args, Debug)]
pub struct VariantsArgs {
    /// Text file (UTF-8) [default: the bundled tinyshakespeare.txt].
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Architectures, comma-separated: standard, peephole, coupled, peephole-coupled, gru,
    /// rnn, rnn-relu.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "standard,peephole,coupled,gru,rnn"
    )]
    pub variants: Vec<String>,
    /// Seeds, comma-separated (one run per variant and seed).
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    pub seeds: Vec<u64>,
    /// Training steps per run.
    #[arg(long, default_value_t = 1500)]
    pub steps: u64,
    /// Hidden units (the same for every variant).
    #[arg(long, default_value_t = 128)]
    pub hidden: usize,
    /// Characters per training sequence.
    #[arg(long, default_value_t = 64)]
    pub seq_len: usize,
    /// Sequences per batch.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 3e-3)]
    pub lr: f32,
    /// Clip the global gradient norm (0 = off).
    #[arg(long, default_value_t = 5.0)]
    pub clip: f32,
    /// Validate every N steps.
    #[arg(long, default_value_t = 250)]
    pub eval_every: u64,
    /// Fraction of the text at its end held out for validation.
    #[arg(long, default_value_t = 0.1)]
    pub val_fraction: f32,
    #[command(flatten)]
    pub common: ExperimentCommon,
}

/// A thread count: 0 (every core) to [`lstm::tasks::settings::MAX_THREADS`].
fn threads_arg(s: &str) -> Result<usize, String> {
    let max = lstm::tasks::settings::MAX_THREADS;
    match s.parse::<usize>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(format!(
            "give a number of threads from 0 (every core) to {max}"
        )),
    }
}

/// A sampling temperature: a positive number that a 32-bit float holds (neither 0 nor infinite
/// once converted).
fn temperature_arg(s: &str) -> Result<f32, String> {
    match s.parse::<f64>() {
        Ok(x) if x > 0.0 && (x as f32) > 0.0 && (x as f32).is_finite() => Ok(x as f32),
        _ => Err(
            "--temperature must be greater than 0, and a 32-bit float: from about 1e-45 to 3e38 \
             (lower is more conservative)"
                .into(),
        ),
    }
}
