using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing;

namespace BeitV2.Ml.Imaging.Rendering;

/// <summary>
/// Token maps as pictures. <see cref="RenderOverImage"/> is the picture behind <c>POST /api/v1/tokens?format=png</c>:
/// the whole photo at a readable size, the square the tokenizer saw tinted patch by patch with each token's colour.
/// <see cref="Render(RgbBuffer, int[,], int, TokenMapRenderOptions?)"/> draws the model's own view (the resized centre
/// crop, a few dozen pixels for small models), optionally upscaled, with grid lines on the patch boundaries.
/// </summary>
/// <remarks>
/// <para>Token colours come from <see cref="TokenColor"/>: a fixed integer hash of the id picks hue,
/// saturation and value, so equal tokens always share a colour (within and across images and
/// requests) while neighbouring ids look unrelated. With codebooks of thousands of codes some
/// different tokens inevitably get similar colours; the picture shows structure, not identity.</para>
/// <para>Each output pixel is <c>round_half_away((1 − Alpha)·photo + Alpha·colour)</c> per channel,
/// then the picture is upscaled by <see cref="TokenMapRenderOptions.Scale"/> (nearest, integer), and
/// grid lines, 1 output pixel wide, replace the first pixel row/column of every patch except those on
/// the top/left border. Patch boundaries are at <c>ceil(i·size/count)</c>, i.e. exactly every
/// patch-size pixels when the view is a multiple of the grid (224 = 14·16).</para>
/// <para>The output is deterministic: the same inputs give the same PNG bytes (see <see cref="PngOutput"/>).</para>
/// </remarks>
public static class TokenMapRenderer
{
    /// <summary>The colour of a token id; depends on the id alone.</summary>
    public static Rgb24 TokenColor(int token)
    {
        // An odd multiplier plus murmur3's fmix32: a bijection on 32 bits with good avalanche, so
        // ids 5 and 6 land far apart.
        uint h = unchecked((uint)token * 0x9E3779B9u + 0x7F4A7C15u);
        h ^= h >> 16;
        h = unchecked(h * 0x85EBCA6Bu);
        h ^= h >> 13;
        h = unchecked(h * 0xC2B2AE35u);
        h ^= h >> 16;
        double hue = (h & 0xFFFF) / 65536.0;
        double saturation = 0.6 + 0.4 * ((h >> 16) & 0xFF) / 255.0;
        double value = 0.7 + 0.3 * (h >> 24) / 255.0;
        return Hsv.ToRgb(hue, saturation, value);
    }

    /// <summary>Renders the token map over an already cropped model view (e.g. <see cref="EvalTransform.CropU8(RgbBuffer)"/>).</summary>
    /// <param name="modelView">The pixels the tokenizer saw; the grid covers all of it.</param>
    /// <param name="tokens">Token ids, [rows, cols], row-major like the patch sequence.</param>
    /// <param name="codebookSize">Codebook size; every id must lie in [0, codebookSize).</param>
    /// <param name="options">Drawing options; <see cref="TokenMapRenderOptions.Default"/> when null.</param>
    /// <returns>A (view width · Scale) × (view height · Scale) image; the caller disposes it.</returns>
    /// <exception cref="ArgumentException">An id is outside the codebook, or the grid has more cells than the view has pixels.</exception>
    public static Image<Rgb24> Render(RgbBuffer modelView, int[,] tokens, int codebookSize, TokenMapRenderOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(modelView);
        ArgumentNullException.ThrowIfNull(tokens);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(codebookSize);
        var o = (options ?? TokenMapRenderOptions.Default).Validate();

        int rows = tokens.GetLength(0), cols = tokens.GetLength(1);
        int width = modelView.Width, height = modelView.Height;
        if (rows == 0 || cols == 0)
            throw new ArgumentException("The token grid is empty.", nameof(tokens));
        if (rows > height || cols > width)
            throw new ArgumentException($"A {rows}x{cols} token grid does not fit a {width}x{height} view.", nameof(tokens));

        var colors = new Rgb24[rows, cols];
        for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++)
        {
            int token = tokens[r, c];
            if ((uint)token >= (uint)codebookSize)
                throw new ArgumentException($"Token {token} at [{r}, {c}] is outside the codebook [0, {codebookSize}).", nameof(tokens));
            colors[r, c] = TokenColor(token);
        }

        var cellOfRow = CellIndices(height, rows);
        var cellOfCol = CellIndices(width, cols);
        int scale = o.Scale;
        double alpha = o.Alpha;
        var pixels = modelView.Pixels;
        var tinted = new Rgb24[width];
        var image = new Image<Rgb24>(width * scale, height * scale);
        image.ProcessPixelRows(accessor =>
        {
            for (int y = 0; y < height; y++)
            {
                int cellRow = cellOfRow[y];
                for (int x = 0; x < width; x++)
                {
                    int i = (y * width + x) * 3;
                    var photo = new Rgb24(pixels[i], pixels[i + 1], pixels[i + 2]);
                    tinted[x] = PixelBlend.Pixel(photo, colors[cellRow, cellOfCol[x]], alpha);
                }

                bool lineRow = o.GridLines && y > 0 && cellOfRow[y] != cellOfRow[y - 1];
                for (int k = 0; k < scale; k++)
                {
                    var row = accessor.GetRowSpan(y * scale + k);
                    if (lineRow && k == 0)
                    {
                        row.Fill(o.GridColor);
                        continue;
                    }
                    for (int x = 0; x < width; x++)
                    {
                        var block = row.Slice(x * scale, scale);
                        block.Fill(tinted[x]);
                        if (o.GridLines && x > 0 && cellOfCol[x] != cellOfCol[x - 1]) block[0] = o.GridColor;
                    }
                }
            }
        });
        return image;
    }

    /// <summary>
    /// Renders the token map over the model's view of <paramref name="original"/>, recomputed from
    /// the <paramref name="plan"/> the tokens were made with (<see cref="ModelView.Crop(Image{Rgb24}, EvalTransformPlan)"/>).
    /// </summary>
    public static Image<Rgb24> Render(Image<Rgb24> original, EvalTransformPlan plan, int[,] tokens, int codebookSize,
        TokenMapRenderOptions? options = null) =>
        Render(ModelView.Crop(original, plan), tokens, codebookSize, options);

    /// <summary><see cref="Render(RgbBuffer, int[,], int, TokenMapRenderOptions?)"/> encoded as an RGB PNG.</summary>
    public static byte[] RenderPng(RgbBuffer modelView, int[,] tokens, int codebookSize, TokenMapRenderOptions? options = null)
    {
        using var image = Render(modelView, tokens, codebookSize, options);
        return PngOutput.EncodeRgb(image);
    }

    /// <summary><see cref="Render(Image{Rgb24}, EvalTransformPlan, int[,], int, TokenMapRenderOptions?)"/> encoded as an RGB PNG.</summary>
    public static byte[] RenderPng(Image<Rgb24> original, EvalTransformPlan plan, int[,] tokens, int codebookSize,
        TokenMapRenderOptions? options = null)
    {
        using var image = Render(original, plan, tokens, codebookSize, options);
        return PngOutput.EncodeRgb(image);
    }

    /// <summary>The smallest and largest <c>longerSide</c> of <see cref="RenderOverImage"/>.</summary>
    public const int MinOverImageSide = 64, MaxOverImageSide = 2048;

    /// <summary>How much of the photo shows outside the tokenizer's view (darkened: the model never saw it).</summary>
    private const double OutsideViewDim = 0.55;

    /// <summary>
    /// The token map over the whole photo, like the Explore page draws it: the photo resized (bicubic) so that its
    /// longer side is <paramref name="longerSide"/> pixels, the square the tokenizer saw (from <paramref name="plan"/>)
    /// tinted cell by cell with each token's colour (<see cref="TokenMapRenderOptions.Alpha"/>), 1-pixel grid lines
    /// between cells, and the rest of the photo darkened. A view reaching past a small photo (its zero padding) is
    /// clipped to the photo. <see cref="TokenMapRenderOptions.Scale"/> does not apply.
    /// </summary>
    /// <returns>An image keeping the photo's aspect ratio; the caller disposes it.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="longerSide"/> is outside
    /// [<see cref="MinOverImageSide"/>, <see cref="MaxOverImageSide"/>].</exception>
    /// <exception cref="ArgumentException">An id is outside the codebook, or the plan is for another image size.</exception>
    public static Image<Rgb24> RenderOverImage(Image<Rgb24> original, EvalTransformPlan plan, int[,] tokens, int codebookSize,
        int longerSide, TokenMapRenderOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(original);
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(tokens);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(codebookSize);
        if (longerSide is < MinOverImageSide or > MaxOverImageSide)
            throw new ArgumentOutOfRangeException(nameof(longerSide), longerSide, $"The longer side must be between {MinOverImageSide} and {MaxOverImageSide} pixels.");
        if (original.Width != plan.OriginalWidth || original.Height != plan.OriginalHeight)
            throw new ArgumentException($"The plan is for a {plan.OriginalWidth}x{plan.OriginalHeight} image, the image is {original.Width}x{original.Height}.", nameof(plan));
        var o = (options ?? TokenMapRenderOptions.Default).Validate();
        int rows = tokens.GetLength(0), cols = tokens.GetLength(1);
        if (rows == 0 || cols == 0) throw new ArgumentException("The token grid is empty.", nameof(tokens));
        var colors = new Rgb24[rows, cols];
        for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++)
        {
            int token = tokens[r, c];
            if ((uint)token >= (uint)codebookSize)
                throw new ArgumentException($"Token {token} at [{r}, {c}] is outside the codebook [0, {codebookSize}).", nameof(tokens));
            colors[r, c] = TokenColor(token);
        }

        double k = (double)longerSide / Math.Max(original.Width, original.Height);
        int width = Math.Max(1, (int)Math.Round(original.Width * k)), height = Math.Max(1, (int)Math.Round(original.Height * k));
        // The view in output pixels: the crop box in resized-image pixels, back to the original, then scaled by k.
        var crop = plan.Crop;
        double sx = (double)original.Width / plan.ResizedWidth * k, sy = (double)original.Height / plan.ResizedHeight * k;
        double vx = crop.Left * sx, vy = crop.Top * sy, vw = crop.Width * sx, vh = crop.Height * sy;
        // For each output column/row: its cell, or -1 outside the view (sampled at the pixel's centre).
        var colOf = ViewCells(width, vx, vw, cols);
        var rowOf = ViewCells(height, vy, vh, rows);

        var image = original.Clone(x => x.Resize(width, height, KnownResamplers.Bicubic));
        var black = new Rgb24(0, 0, 0);
        image.ProcessPixelRows(accessor =>
        {
            for (int y = 0; y < height; y++)
            {
                var row = accessor.GetRowSpan(y);
                int r = rowOf[y];
                bool lineRow = o.GridLines && r >= 0 && y > 0 && rowOf[y - 1] >= 0 && rowOf[y - 1] != r;
                for (int x = 0; x < width; x++)
                {
                    int c = colOf[x];
                    if (r < 0 || c < 0)
                    {
                        row[x] = PixelBlend.Pixel(row[x], black, OutsideViewDim);
                        continue;
                    }
                    bool line = lineRow || (o.GridLines && x > 0 && colOf[x - 1] >= 0 && colOf[x - 1] != c);
                    row[x] = line ? o.GridColor : PixelBlend.Pixel(row[x], colors[r, c], o.Alpha);
                }
            }
        });
        return image;
    }

    /// <summary><see cref="RenderOverImage"/> encoded as an RGB PNG.</summary>
    public static byte[] RenderOverImagePng(Image<Rgb24> original, EvalTransformPlan plan, int[,] tokens, int codebookSize,
        int longerSide, TokenMapRenderOptions? options = null)
    {
        using var image = RenderOverImage(original, plan, tokens, codebookSize, longerSide, options);
        return PngOutput.EncodeRgb(image);
    }

    private static int[] ViewCells(int size, double start, double extent, int count)
    {
        var cells = new int[size];
        for (int p = 0; p < size; p++)
        {
            double u = (p + 0.5 - start) / extent;
            cells[p] = u is >= 0 and < 1 ? Math.Min(count - 1, (int)(u * count)) : -1;
        }
        return cells;
    }

    /// <summary>
    /// A flat row-major token sequence (the tokenizer's int64 output for one image) as a [rows, cols] grid.
    /// </summary>
    /// <exception cref="ArgumentException">The length is not rows·cols or an id does not fit in int.</exception>
    public static int[,] ToGrid(ReadOnlySpan<long> tokens, int rows, int cols)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(cols);
        if (tokens.Length != (long)rows * cols)
            throw new ArgumentException($"Expected {rows}x{cols} = {(long)rows * cols} tokens, got {tokens.Length}.", nameof(tokens));
        var grid = new int[rows, cols];
        for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++)
        {
            long token = tokens[r * cols + c];
            if (token is < int.MinValue or > int.MaxValue)
                throw new ArgumentException($"Token {token} at [{r}, {c}] does not fit in an int.", nameof(tokens));
            grid[r, c] = (int)token;
        }
        return grid;
    }

    // cell[p] = floor(p · count / size): cells of equal size when size is a multiple of count.
    private static int[] CellIndices(int size, int count)
    {
        var cells = new int[size];
        for (int p = 0; p < size; p++) cells[p] = (int)((long)p * count / size);
        return cells;
    }
}
