using BeitV2.Ml.Retrieval;
using System.Text.Json;
using System.Text.Json.Nodes;
using BeitV2.Ml.Serving;
using BeitV2.Web.Datasets;
using BeitV2.Web.Errors;
using BeitV2.Web.Inference;
using BeitV2.Web.Infrastructure;
using BeitV2.Web.Jobs;
using BeitV2.Web.Registry;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace BeitV2.Web.Collections;

/// <summary>
/// What the collection routes do: create (with its index job), describe, delete, add images, search by image or item, and
/// read items, thumbnails, patches and code statistics. The files are <see cref="CollectionStore"/>'s; a collection's
/// status while it is not ready is its index job's.
/// </summary>
public sealed class CollectionService(CollectionStore store, CollectionCodes codes, CollectionPictures pictures, CollectionEmbedder embedder,
    DatasetCatalog datasets, InferenceService inference, ModelRegistry registry, JobStore jobs, JobScheduler scheduler,
    UploadedImageReader reader, DecodeBudget budget, ILogger<CollectionService> logger)
{
    public const int MaxK = 100, MaxLimit = 500, DefaultLimit = 50;

    // ------------------------------------------------------------------ create, describe, delete

    public CollectionAccepted Create(CollectionRequest request)
    {
        if (string.IsNullOrWhiteSpace(request.Name)) throw new InvalidRequestException("'name' is required: a few words that say what the collection holds.");
        var name = request.Name.Trim();
        if (name.Length > 100) throw new InvalidRequestException($"'name' is {name.Length} characters long; at most 100 are accepted.");
        if (string.IsNullOrWhiteSpace(request.Dataset))
            throw new InvalidRequestException("'dataset' is required: a dataset id from GET /api/v1/datasets, e.g. \"fashion-mnist\".");
        var pooling = request.Pooling ?? "cls";
        if (pooling is not "cls" and not "mean") throw new InvalidRequestException($"'pooling' must be \"cls\" or \"mean\", not \"{pooling}\".");
        var quantization = request.Quantization ?? "float32";
        if (quantization is not "float32" and not "int8")
            throw new InvalidRequestException($"'quantization' must be \"float32\" or \"int8\", not \"{quantization}\".");
        var config = IndexConfig(request);
        var dataset = datasets.Get(request.Dataset.Trim());
        if (dataset.Images == 0) throw new InvalidRequestException($"Dataset '{dataset.Id}' has no images to index.");
        var model = inference.ResolveModel(request.EmbeddingModel, Operation.Features);
        ModelInfo? tokenizer = null;
        if (!string.IsNullOrWhiteSpace(request.Tokenizer))
        {
            tokenizer = inference.ResolveModel(request.Tokenizer, Operation.Tokens);
            if (tokenizer.CodebookSize is not { } size || size > ushort.MaxValue + 1)
                throw new InvalidRequestException($"Tokenizer '{tokenizer.Id}' has a codebook of {tokenizer.CodebookSize} codes; collections keep codes of tokenizers of up to 65,536.");
        }
        var settings = JobSettings.Parse(config);
        var all = dataset.Splits?.Values.Sum() ?? dataset.Images;
        var planned = Math.Min(all, settings.MaxImages ?? int.MaxValue);

        var id = store.NewId(name);
        var jobId = "job-" + Guid.NewGuid().ToString("N")[..12];
        var now = DateTimeOffset.UtcNow;
        var grid = tokenizer is null ? 0 : tokenizer.ImageSize / tokenizer.PatchSize;
        store.Create(new CollectionRecord
        {
            Id = id, Name = name, Dataset = dataset.Id, EmbeddingModel = model.Id, Tokenizer = tokenizer?.Id, Pooling = pooling, Quantization = quantization, Dim = model.EmbedDim,
            Rows = grid, Cols = grid, CodebookSize = tokenizer?.CodebookSize,
            Labels = dataset.Kind == "classification" && dataset.ClassNames.Count > 0 ? dataset.ClassNames : null,
            Job = jobId, Planned = planned, CreatedAt = now, UpdatedAt = now,
        });
        var batch = config is { } c && c.TryGetProperty("batchSize", out _) ? settings.BatchSize : IndexJobs.DefaultBatchSize;
        jobs.Create(new JobRecord
        {
            Id = jobId, Type = JobType.Index, Name = $"index {name}", Dataset = dataset.Id, BaseModel = model.Id, Collection = id, Config = config,
            Status = JobStatus.Queued, CreatedAt = now, Progress = new JobProgress(0, 1, 0, (planned + batch - 1) / batch, 0, null),
        });
        var job = scheduler.Enqueue(jobId);
        logger.LogInformation("Collection {Id} created: {Planned} images of {Dataset} by job {Job}", id, planned, dataset.Id, jobId);
        return new CollectionAccepted(id, CollectionStatus.Indexing, job.Id);
    }

    /// <summary>The index job's config: the request's <c>config</c> (index keys only) with its <c>maxImages</c>.</summary>
    private static JsonElement? IndexConfig(CollectionRequest request)
    {
        var config = new JsonObject();
        if (request.Config is { } c && c.ValueKind != JsonValueKind.Null)
        {
            if (c.ValueKind != JsonValueKind.Object) throw new InvalidRequestException("'config' must be a JSON object, e.g. {\"batchSize\": 64}.");
            foreach (var p in c.EnumerateObject())
            {
                if (!JobSettings.IndexKeys.Contains(p.Name))
                    throw new InvalidRequestException($"config.{p.Name} does not apply to an index job; it takes {string.Join(", ", JobSettings.IndexKeys)}.");
                config[p.Name] = JsonNode.Parse(p.Value.GetRawText());
            }
        }
        if (request.MaxImages is { } max)
        {
            if (max < 1) throw new InvalidRequestException($"'maxImages' must be at least 1, not {max}.");
            config["maxImages"] = max;
        }
        if (config.Count == 0) return null;
        var element = JsonSerializer.SerializeToElement(config);
        JobSettings.Parse(element);   // ranges: 400 with the key
        return element;
    }

    public IReadOnlyList<CollectionView> List() => store.List().Select(Describe).ToList();

    public CollectionView Get(string id) => Describe(store.Get(id));

    private CollectionView Describe(CollectionRecord c)
    {
        var (status, error) = Status(c);
        var state = SafeState(c.Id);
        var dir = store.CollectionDirectory(c.Id);
        CollectionIndexInfo? index = state.IndexFile is { } file
            ? new CollectionIndexInfo(state.IndexKind ?? "exact", state.IndexQuantization ?? "float32", FileLength(Path.Combine(dir, file)))
            : null;
        return new CollectionView(c.Id, c.Name, c.Dataset, c.EmbeddingModel, c.Tokenizer, c.Pooling, c.Dim, status, c.Job, state.Items, state.IndexItems,
            c.Labels, index, DiskUsage.Of(dir), error, c.CreatedAt, c.UpdatedAt, c.Planned, c.CodebookSize);
    }

    private CollectionState SafeState(string id)
    {
        try { return store.State(id); }
        catch (NotFoundException) { return new CollectionState(); }
    }

    private static long FileLength(string path)
    {
        try { return new FileInfo(path).Length; }
        catch (IOException) { return 0; }
    }

    /// <summary>Ready once its job indexed every planned image; before that, what its job says.</summary>
    private (string Status, string? Error) Status(CollectionRecord c)
    {
        if (c.Status == CollectionStatus.Ready) return (CollectionStatus.Ready, null);
        var job = c.Job is null ? null : jobs.Find(c.Job);
        return job?.Status switch
        {
            null => (CollectionStatus.Failed, "its index job was deleted; delete the collection and create it again"),
            JobStatus.Failed => (CollectionStatus.Failed, job.Error),
            JobStatus.Cancelled => (CollectionStatus.Cancelled, null),
            _ => (CollectionStatus.Indexing, null),
        };
    }

    /// <summary>409 unless the collection is ready: what it is doing instead, and what to do.</summary>
    private CollectionRecord Ready(string id, string doing)
    {
        var c = store.Get(id);
        var (status, error) = Status(c);
        if (status == CollectionStatus.Ready) return c;
        var items = SafeState(id).Items;
        throw new ConflictException(status switch
        {
            CollectionStatus.Failed => $"Collection '{id}' could not be indexed: {error} It cannot {doing}; delete it, or resume its job (POST /api/v1/jobs/{c.Job}/resume).",
            CollectionStatus.Cancelled => $"Collection '{id}' is not ready: its index job was cancelled after {items} of {c.Planned} images. " +
                                          $"Resume it (POST /api/v1/jobs/{c.Job}/resume) to {doing}.",
            _ => $"Collection '{id}' is still being indexed ({items} of {c.Planned} images so far); {doing} once its status is ready.",
        });
    }

    /// <summary>
    /// Cancels the collection's index job if it runs, then removes the collection's folder. The job's record stays (its log and
    /// metrics, a few KB) until it is deleted with <c>DELETE /api/v1/jobs/{id}</c> like any job's.
    /// </summary>
    public void Delete(string id)
    {
        var c = store.Get(id);
        if (c.Job is { } jobId && jobs.Find(jobId) is { } job && !JobStatus.IsFinished(job.Status))
        {
            try { scheduler.Cancel(jobId); }
            catch (ConflictException) { }   // finished meanwhile
        }
        store.Delete(id);
        logger.LogInformation("Collection {Id} deleted", id);
    }

    // ------------------------------------------------------------------ images and search

    public async Task<AddedImages> AddImagesAsync(string id, HttpRequest request, CancellationToken ct)
    {
        var c = Ready(id, "take images");
        var uploads = await reader.ReadAsync(request, ct);
        var items = new List<CollectionItem>(uploads.Count);
        var copies = new List<byte[]>(uploads.Count);
        var vectors = new float[uploads.Count * c.Dim];
        var tokens = new ushort[uploads.Count * c.Rows * c.Cols];
        for (var i = 0; i < uploads.Count; i++)
        {
            var upload = uploads[i];
            using var lease = await budget.AcquireAsync(upload.Header.DecodedBytes, ct);
            using var image = reader.Decode(upload);
            var embedded = await embedder.EmbedAsync(c, [image]);
            embedded.Vectors.CopyTo(vectors, i * c.Dim);
            embedded.Tokens.CopyTo(tokens, i * c.Rows * c.Cols);
            copies.Add(CollectionPictures.StoredCopy(image));
            items.Add(new CollectionItem { Width = image.Width, Height = image.Height, FileName = Path.GetFileName(upload.FileName) });
        }
        var (first, state) = store.Add(id, c.Dim, items, vectors, tokens, (first, files) =>
        {
            Directory.CreateDirectory(files.PathOf(CollectionFiles.Uploads));
            // Written before the commit, so a committed item always has its picture (a crashed writer's are overwritten).
            for (var i = 0; i < copies.Count; i++) AtomicFile.WriteAllBytes(files.PathOf(CollectionPictures.UploadFile(first + i)), copies[i]);
        }, c.VectorQuantization);
        logger.LogInformation("Collection {Id}: {Count} image(s) added, {Items} items", id, items.Count, state.Items);
        return new AddedImages(items.Select((item, i) => new AddedImage(first + i, item.FileName)).ToList(), state.Items);
    }

    /// <param name="exact">scan every stored vector instead of asking the index: the reference its recall is measured against
    /// (<c>BeitV2.Bench collections</c>); it reads all the collection's vectors, so it costs memory and time on big collections.</param>
    public async Task<SearchResults> SearchAsync(string id, int? k, long? item, string? model, HttpRequest request, CancellationToken ct,
        bool exact = false)
    {
        var n = k ?? 10;
        if (n is < 1 or > MaxK) throw new InvalidRequestException($"k must be between 1 and {MaxK}, not {n}.");
        var c = store.Get(id);
        if (!string.IsNullOrWhiteSpace(model) && (registry.Find(model.Trim())?.Id ?? model.Trim()) != c.EmbeddingModel)
            throw new ConflictException(
                $"Collection '{id}' was indexed with model '{c.EmbeddingModel}'; a query embedded by '{model}' would not be comparable. " +
                $"Leave 'model' out or give '{c.EmbeddingModel}'.");
        c = Ready(id, "be searched");
        float[] query;
        if (item is { } at)
        {
            if (request.ContentLength > 0 || request.HasFormContentType || request.Headers.TransferEncoding.Count > 0)
                throw new InvalidRequestException("Search by 'item' or by an uploaded image, not both.");
            var state = store.State(id);
            CheckItem(id, at, state);
            query = store.Vectors(id, c.Dim, at, 1);
        }
        else
        {
            var info = registry.Get(c.EmbeddingModel);
            using var run = await inference.RunAsync(request, info, ServedOperations.Features, ct);
            if (run.Images.Count != 1) throw new InvalidRequestException($"A search takes one image; the request has {run.Images.Count}.");
            query = CollectionEmbedder.Pooled(run.Images[0].Result, c.Pooling);
        }
        using var lease = store.Index(id);
        if (lease.Index is not { } index) throw new ConflictException($"Collection '{id}' has no index yet.");
        var indexed = lease.State;
        var items = store.Items(id, indexed);
        var found = exact ? ExactScan(id, c.Dim, indexed.IndexItems, query, n, ct) : index.Search(query, n);
        var hits = found.Where(h => h.Key < items.Count)
            .Select(h => new SearchHit(h.Key, h.Score, LabelOf(c, items[(int)h.Key]), ThumbnailUrl(id, h.Key))).ToList();
        return new SearchResults(id, c.EmbeddingModel, n, new SearchQuery(item), hits);
    }

    /// <summary>
    /// The exact top <paramref name="k"/> by cosine over the stored vectors, read a chunk at a time: memory stays at one chunk
    /// and k hits whatever the collection's size (a client asks for it; its time grows with the collection, its memory does not).
    /// </summary>
    private IReadOnlyList<VectorHit> ExactScan(string id, int dim, long count, float[] query, int k, CancellationToken ct)
    {
        const int Chunk = 4096;
        var q = (float[])query.Clone();
        var norm = System.Numerics.Tensors.TensorPrimitives.Norm(q);
        if (norm > 0) System.Numerics.Tensors.TensorPrimitives.Divide(q, norm, q);
        var best = new PriorityQueue<VectorHit, float>(k + 1);   // the worst kept hit on top
        for (long first = 0; first < count; first += Chunk)
        {
            ct.ThrowIfCancellationRequested();
            var n = (int)Math.Min(Chunk, count - first);
            var rows = store.Vectors(id, dim, first, n);
            for (var i = 0; i < n; i++)
            {
                var row = rows.AsSpan(i * dim, dim);
                var length = System.Numerics.Tensors.TensorPrimitives.Norm(row);
                var score = length > 0 ? System.Numerics.Tensors.TensorPrimitives.Dot(row, q) / length : 0f;
                var hit = new VectorHit(first + i, score);
                if (best.Count < k) best.Enqueue(hit, score);
                else if (score > best.Peek().Score) best.EnqueueDequeue(hit, score);
            }
        }
        var result = new VectorHit[best.Count];
        for (var i = result.Length - 1; i >= 0; i--) result[i] = best.Dequeue();
        return result;
    }

    // ------------------------------------------------------------------ items, pictures, codes

    public ItemView Item(string id, long item)
    {
        var c = store.Get(id);
        var entry = Entry(id, item);
        return new ItemView(item, LabelOf(c, entry), entry.Uploaded ? entry.FileName ?? "upload" : entry.DatasetIndex.ToString(System.Globalization.CultureInfo.InvariantCulture),
            entry.Width, entry.Height, entry.Uploaded ? null : entry.DatasetIndex, entry.FileName, ThumbnailUrl(id, item));
    }

    public byte[] Thumbnail(string id, long item) => pictures.Thumbnail(store.Get(id), item, Entry(id, item));

    public byte[] Patch(string id, long item, int? row, int? col)
    {
        var c = store.Get(id);
        if (c.Tokenizer is null) throw new ConflictException($"Collection '{id}' was indexed without a tokenizer: its items have no patches.");
        if (row is not { } r || r < 0 || r >= c.Rows || col is not { } cl || cl < 0 || cl >= c.Cols)
            throw new InvalidRequestException($"'row' and 'col' must name a patch of the {c.Rows}×{c.Cols} token grid (0 to {c.Rows - 1} and 0 to {c.Cols - 1}).");
        return pictures.Patch(c, item, Entry(id, item), r, cl);
    }

    public CodeStatistics Codes(string id)
    {
        var c = WithTokens(id);
        var state = store.State(id);
        return codes.Statistics(c, state, store.Items(id, state));
    }

    public CodebookPage Codebook(string modelId, int code, string? collection, int? limit, int? offset)
    {
        var model = registry.Get(modelId);
        if (model.Kind != ApiModelKinds.Tokenizer)
            throw new InvalidRequestException($"Model '{model.Id}' is a {model.Kind}; only a tokenizer has a codebook.");
        if (string.IsNullOrWhiteSpace(collection))
        {
            var using_ = store.List().Where(c => c.Tokenizer == model.Id).Select(c => c.Id).ToList();
            throw new InvalidRequestException(
                $"Name the collection whose patches to show: ?collection=ID, one indexed with tokenizer '{model.Id}' " +
                (using_.Count == 0 ? "(none is yet: create one with POST /api/v1/collections and \"tokenizer\")." : $"({string.Join(", ", using_)})."));
        }
        var size = model.CodebookSize ?? 0;
        if (code < 0 || code >= size) throw new InvalidRequestException($"Code {code} is outside the codebook of '{model.Id}' (0 to {size - 1}).");
        var n = limit ?? DefaultLimit;
        if (n is < 1 or > MaxLimit) throw new InvalidRequestException($"limit must be between 1 and {MaxLimit}, not {n}.");
        var skip = offset ?? 0;
        if (skip < 0) throw new InvalidRequestException($"offset must be 0 or more, not {skip}.");
        var c = store.Get(collection.Trim());
        if (c.Tokenizer != model.Id)
            throw new ConflictException(c.Tokenizer is null
                ? $"Collection '{c.Id}' was indexed without a tokenizer; create one with \"tokenizer\": \"{model.Id}\" to browse its codes."
                : $"Collection '{c.Id}' was indexed with tokenizer '{c.Tokenizer}', not '{model.Id}': its codes are another codebook's.");
        c = Ready(c.Id, "show its patches");
        var state = store.State(c.Id);
        var items = store.Items(c.Id, state);
        var page = codes.Patches(c, state, code, skip, n);
        return new CodebookPage(model.Id, code, c.Id, page.Total, page.Patches.Select(p => new CodebookPatch(p.Item, p.Row, p.Col,
            LabelOf(c, items[(int)p.Item]), $"/api/v1/collections/{c.Id}/items/{p.Item}/patch?row={p.Row}&col={p.Col}")).ToList());
    }

    private CollectionRecord WithTokens(string id)
    {
        var c = store.Get(id);
        if (c.Tokenizer is null) throw new ConflictException($"Collection '{id}' was indexed without a tokenizer: it has no codes.");
        return c;
    }

    private CollectionItem Entry(string id, long item)
    {
        var state = store.State(id);
        CheckItem(id, item, state);
        return store.Items(id, state)[(int)item];
    }

    private static void CheckItem(string id, long item, CollectionState state)
    {
        if (item < 0 || item >= state.Items)
            throw new NotFoundException(state.Items == 0
                ? $"Collection '{id}' has no items yet."
                : $"Collection '{id}' has no item {item}; its items are 0 to {state.Items - 1}.");
    }

    private static string? LabelOf(CollectionRecord c, CollectionItem item) =>
        c.Labels is { } labels && item.Label >= 0 && item.Label < labels.Count ? labels[item.Label] : null;

    private static string ThumbnailUrl(string id, long item) => $"/api/v1/collections/{id}/items/{item}/thumbnail";
}
