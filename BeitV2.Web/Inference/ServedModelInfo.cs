namespace BeitV2.Web.Inference;

/// <summary>One loaded model, as <c>/api/v1/info</c> lists it under <c>served</c>: what runs it and how it was loaded.</summary>
/// <param name="Id">the model's registry id.</param>
/// <param name="Engine"><c>onnx</c> (ONNX Runtime) or <c>torch</c> (TorchSharp).</param>
/// <param name="Precision">what it computes in: <c>fp32</c> or <c>int8</c> (onnx); <c>fp32</c>, <c>bf16</c> or <c>fp16</c> (torch).</param>
/// <param name="Device">"cpu" or "cuda:N".</param>
/// <param name="Fallback">why TorchSharp serves it although <c>Inference:Engine=onnx</c> (no exporter for its kind yet, a failed
/// export or session, a TorchSharp-only precision); null when it runs on the configured engine.</param>
/// <param name="LoadSeconds">the load, including a graph export when there was one.</param>
/// <param name="Graph">onnx only: <c>cached</c> (the package's cached graph was loaded, no export) or <c>exported</c> (exported
/// and cached by this load); null for torch.</param>
public sealed record ServedModelInfo(string Id, string Engine, string Precision, string Device, string? Fallback, double LoadSeconds, string? Graph);
