using Prometheus;

namespace BeitV2.Web.Inference;

/// <summary>Prometheus metrics of the inference path (HTTP request counts come from prometheus-net's middleware).</summary>
public static class InferenceMetrics
{
    public static readonly Counter Requests = Metrics.CreateCounter("beitv2_inference_requests_total",
        "Inference requests by operation and outcome.", new CounterConfiguration { LabelNames = new[] { "operation", "outcome" } });

    public static readonly Counter Failures = Metrics.CreateCounter("beitv2_inference_failures_total",
        "Inference batches that failed in the model.", new CounterConfiguration { LabelNames = new[] { "operation" } });

    public static readonly Histogram QueueSeconds = Metrics.CreateHistogram("beitv2_inference_queue_seconds",
        "Time an image waited for its batch to start.", new HistogramConfiguration
        {
            LabelNames = new[] { "operation" },
            Buckets = Histogram.ExponentialBuckets(0.0005, 2, 16),
        });

    public static readonly Histogram ComputeSeconds = Metrics.CreateHistogram("beitv2_inference_compute_seconds",
        "Forward-pass time of one batch.", new HistogramConfiguration
        {
            LabelNames = new[] { "operation" },
            Buckets = Histogram.ExponentialBuckets(0.001, 2, 16),
        });

    public static readonly Histogram DeviceWaitSeconds = Metrics.CreateHistogram("beitv2_inference_device_wait_seconds",
        "Time a batch waited for its GPU while a training step held it (only when inference and training share a GPU).", new HistogramConfiguration
        {
            LabelNames = new[] { "operation" },
            Buckets = Histogram.ExponentialBuckets(0.001, 2, 16),
        });

    public static readonly Histogram BatchSize = Metrics.CreateHistogram("beitv2_inference_batch_size",
        "Images per forward pass.", new HistogramConfiguration
        {
            LabelNames = new[] { "operation" },
            Buckets = new double[] { 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64 },
        });

    public static readonly Gauge InFlight = Metrics.CreateGauge("beitv2_inference_in_flight", "Inference requests being processed or queued.");

    public static readonly Gauge LoadedModels = Metrics.CreateGauge("beitv2_models_loaded", "Models held in memory for inference.");

    /// <summary>1 per loaded model, labelled with what serves it (the labels of an unloaded model are removed).</summary>
    public static readonly Gauge ModelInfo = Metrics.CreateGauge("beitv2_model_serving_info",
        "A loaded model and what serves it: engine (onnx or torch), precision and device (value 1).",
        new GaugeConfiguration { LabelNames = new[] { "model", "engine", "precision", "device" } });
}
