using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Teachers;
using BeitV2.Ml.Models.Vqkd;
using static TorchSharp.torch;

namespace BeitV2.Ml.Tests.Parity;

/// <summary>
/// VQ-KD in three phases, each from the saved weights: tokenisation (eval), the eval forward with
/// fixed teacher targets, and one training-mode forward with its EMA codebook update.
/// </summary>
public sealed class VqkdRunner : IParityRunner
{
    public Dictionary<string, Tensor> Run(FixtureDescriptor f, WeightSource source, IReadOnlyDictionary<string, Tensor> io)
    {
        var config = ModelJson.Deserialize<VqkdConfig>(f.Config, f.Stem);
        var path = source == WeightSource.OfficialPth ? f.WeightsPth : f.WeightsSafetensors;
        VqkdTokenizer Fresh()
        {
            var m = new VqkdTokenizer(config);
            VqkdCheckpoint.Load(m, path);
            return m.OnDevice();
        }
        var r = new Dictionary<string, Tensor>();

        using (var m = Fresh())
        using (inference_mode())
        {
            m.eval();
            r["token_ids"] = m.GetCodebookIndices(io["images_raw"].On());
            r["cluster_size_after_tokenize"] = m.Quantizer.ClusterSize.clone();
        }

        using (var m = Fresh())
        using (inference_mode())
        {
            m.eval();
            using var o = m.Forward(io["images_raw"].On(), io["teacher_targets"].On(), keepHidden: true);
            r["images_pre"] = o.ImagesPre.clone();
            using (var scaling = ScalingLayer.ForClip().OnDevice()) r["images_scaled"] = scaling.forward(o.ImagesPre);
            for (var i = 0; i < o.Encoding.EncoderHidden.Count; i++) r[$"encoder_hidden_{i}"] = o.Encoding.EncoderHidden[i].clone();
            r["encoder_out"] = o.Encoding.EncoderOut.clone();
            r["encode_task_out"] = o.Encoding.EncodeTaskOut.clone();
            r["quantized"] = o.Encoding.Quantized.clone();
            r["quant_indices"] = o.Encoding.Indices.reshape(-1).clone();
            for (var i = 0; i < o.DecoderHidden.Count; i++) r[$"decoder_hidden_{i}"] = o.DecoderHidden[i].clone();
            r["decoder_features"] = o.DecoderFeatures.clone();
            r["decoder_out"] = o.Reconstruction.clone();
            r["commit_loss"] = o.Encoding.CommitLoss.clone();
            r["rec_loss"] = o.RecLoss.clone();
            r["total_loss"] = o.Loss.clone();
            r["cluster_size_after_forward"] = m.Quantizer.ClusterSize.clone();
        }

        using (var m = Fresh())
        {
            m.train();
            var q = m.Quantizer;
            Dictionary<string, Tensor> State(string suffix) => new()
            {
                [$"train_codebook_{suffix}"] = q.Embedding.Weight.detach().clone(),
                [$"train_cluster_size_{suffix}"] = q.ClusterSize.clone(),
                [$"train_embedding_cluster_size_{suffix}"] = q.Embedding.get_parameter("cluster_size")!.detach().clone(),
                [$"train_embed_avg_{suffix}"] = q.Embedding.get_parameter("embed_avg")!.detach().clone(),
            };
            foreach (var kv in State("before")) r[kv.Key] = kv.Value;
            using var o = m.Forward(io["train_images_raw"].On(), io["train_teacher_targets"].On());
            r["train_token_ids"] = o.Encoding.Indices.clone();
            r["train_encode_task_out"] = o.Encoding.EncodeTaskOut.detach().clone();
            r["train_quantized"] = o.Encoding.Quantized.detach().clone();
            r["train_commit_loss"] = o.Encoding.CommitLoss.detach().clone();
            r["train_rec_loss"] = o.RecLoss.detach().clone();
            r["train_total_loss"] = o.Loss.detach().clone();
            foreach (var kv in State("after")) r[kv.Key] = kv.Value;
        }
        return r;
    }
}
