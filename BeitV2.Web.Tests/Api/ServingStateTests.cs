using BeitV2.Ml.Models.Vqkd;
using BeitV2.Ml.Serving;
using BeitV2.Web.Inference;
using Microsoft.Extensions.DependencyInjection;
using static TorchSharp.torch;

namespace BeitV2.Web.Tests.Api;

/// <summary>
/// Serving writes no model state: requests that share a loaded model cannot change each other's answers. The TorchSharp
/// engine is the one with state to check (a graph in ONNX Runtime has none), so this host serves with it.
/// </summary>
[Collection(ApiCollection.Name)]
public sealed class ServingStateTests
{
    private static bool Identical(Tensor a, Tensor b)
    {
        if (a.dtype != b.dtype || !a.shape.SequenceEqual(b.shape)) return false;
        using var same = a.eq(b).all();
        return same.item<bool>();
    }

    [Fact]
    public async Task TwoConcurrentTokenRequests_LeaveTheQuantizersBuffersUnchanged()
    {
        using var api = new ApiHost(new Dictionary<string, string?> { ["Inference:Engine"] = "torch" });
        var tokenizer = api.Seed(new VqkdTokenizer(VqkdConfig.Micro() with { QuantizeKmeansInit = false }), "micro tokenizer");
        using var client = api.CreateClient();
        var host = api.Services.GetRequiredService<ModelHost>();
        var worker = await host.GetAsync(tokenizer);
        var module = Assert.IsAssignableFrom<TorchServedModel>(worker.Model).Module;
        // Every parameter and buffer (codebook, embedding cluster_size and embed_avg, initted, the usage statistic
        // quantize.cluster_size); the quantizer keeps no counters outside its state dict.
        var before = module.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
        Assert.Contains("quantize.cluster_size", before.Keys);

        byte[][] photos = [TestImages.Coffee, TestImages.Rocket, TestImages.Chelsea];
        var responses = await Task.WhenAll(
            client.PostAsync($"/api/v1/tokens?model={tokenizer.Id}", Http.Images(photos)),
            client.PostAsync($"/api/v1/tokens?model={tokenizer.Id}", Http.Images(photos)));
        var answers = new List<string>();
        foreach (var response in responses) answers.Add((await response.JsonAsync()).GetProperty("images").GetRawText());
        Assert.Equal(answers[0], answers[1]);

        Assert.Same(worker, await host.GetAsync(tokenizer));   // the same loaded module, not a reload
        var after = module.state_dict();
        Assert.Equal(before.Keys.Order(), after.Keys.Order());
        foreach (var (name, value) in before)
            Assert.True(Identical(value, after[name]), $"{name} changed while serving");
        foreach (var t in before.Values) t.Dispose();
        api.AssertNoServerErrors();
    }
}
