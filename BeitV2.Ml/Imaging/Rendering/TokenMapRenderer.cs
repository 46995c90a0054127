using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace BeitV2.Ml.Imaging.Rendering;

/// <summary>
/// The picture behind <c>POST /api/v1/tokens?format=png</c>: the model's view of the image (the
/// resized centre crop the tokenizer saw, so every patch lies under its token), each patch tinted
/// with its token's colour, optionally upscaled and with grid lines on the patch boundaries.
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
