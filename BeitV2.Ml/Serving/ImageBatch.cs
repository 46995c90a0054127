namespace BeitV2.Ml.Serving;

/// <summary>
/// The input of one forward pass: <see cref="Count"/> preprocessed images (B, 3, S, S), float32, CHW, one after
/// the other in one contiguous buffer. The batching worker owns one, sized for its largest batch and reused for every
/// batch, so no engine allocates an input per batch: TorchSharp copies it into its own tensor once, ONNX Runtime
/// reads it in place (the array lives on the pinned object heap, so its address never moves).
/// </summary>
public sealed class ImageBatch
{
    private readonly float[] pixels;

    /// <param name="capacity">most images a batch holds (the worker's MaxBatch).</param>
    /// <param name="size">side S of the square input.</param>
    public ImageBatch(int capacity, int size)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(size, 1);
        Capacity = capacity;
        Size = size;
        ImageLength = 3 * size * size;
        pixels = GC.AllocateUninitializedArray<float>(checked(capacity * ImageLength), pinned: true);
    }

    /// <summary>Most images a batch can hold.</summary>
    public int Capacity { get; }
    /// <summary>Side S of the square input.</summary>
    public int Size { get; }
    /// <summary>Floats per image: 3·S².</summary>
    public int ImageLength { get; }
    /// <summary>Images in the batch now (set by <see cref="Fill"/> or <see cref="SetCount"/>).</summary>
    public int Count { get; private set; }

    /// <summary>The shape of the batch now: (B, 3, S, S).</summary>
    public long[] Shape => [Count, 3, Size, Size];

    /// <summary>The pixels of the batch now (B·3·S² floats).</summary>
    public ReadOnlySpan<float> Pixels => pixels.AsSpan(0, Count * ImageLength);

    /// <summary>The same pixels as memory (for engines that wrap it; it stays pinned for the batch's lifetime).</summary>
    public Memory<float> Memory => pixels.AsMemory(0, Count * ImageLength);

    /// <summary>Image <paramref name="i"/>'s slot, to be written before the batch runs.</summary>
    public Span<float> Image(int i)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(i);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(i, Capacity);
        return pixels.AsSpan(i * ImageLength, ImageLength);
    }

    /// <summary>Starts a batch of <paramref name="count"/> images (their slots are written through <see cref="Image"/>).</summary>
    public void SetCount(int count)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, Capacity);
        Count = count;
    }

    /// <summary>A batch holding copies of <paramref name="images"/> (each at least 3·S² floats; the first 3·S² are taken).</summary>
    public static ImageBatch Of(int size, params float[][] images)
    {
        var batch = new ImageBatch(Math.Max(1, images.Length), size);
        batch.Fill(images);
        return batch;
    }

    /// <summary>A batch holding a copy of a (B, 3, S, S) float tensor's pixels (tools and tests; serving fills slots itself).</summary>
    public static ImageBatch Of(TorchSharp.torch.Tensor images)
    {
        if (images.dim() != 4 || images.shape[1] != 3 || images.shape[2] != images.shape[3])
            throw new ArgumentException($"Expected (B, 3, S, S) images; got ({string.Join(", ", images.shape)}).", nameof(images));
        var batch = new ImageBatch((int)images.shape[0], (int)images.shape[2]);
        batch.SetCount((int)images.shape[0]);
        using var pixels = images.detach().cpu().to_type(TorchSharp.torch.ScalarType.Float32).contiguous();
        pixels.data<float>().CopyTo(batch.pixels.AsSpan(0, batch.Count * batch.ImageLength));
        return batch;
    }

    /// <summary>Copies <paramref name="images"/> into the buffer and makes them the batch.</summary>
    public void Fill(IReadOnlyList<float[]> images)
    {
        SetCount(images.Count);
        for (var i = 0; i < images.Count; i++) images[i].AsSpan(0, ImageLength).CopyTo(Image(i));
    }
}
