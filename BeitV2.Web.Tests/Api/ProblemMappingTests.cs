using System.Text.Json;
using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Data;
using BeitV2.Ml.Imaging;
using BeitV2.Web.Errors;
using BeitV2.Web.Infrastructure;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace BeitV2.Web.Tests.Api;

/// <summary>
/// The one mapping from errors to HTTP: each domain error and each error of the ML library gets its status,
/// title and problem+json body (the HTTP tests of each route are the contract for the words; this pins the
/// mapping itself, so a new kind of error cannot fall through to a 500).
/// </summary>
public sealed class ProblemMappingTests
{
    public static TheoryData<Exception, int, string> DomainErrors() => new()
    {
        { new NotFoundException("No job with id 'x'."), 404, "Not found" },
        { new ConflictException("Job 'x' has already finished (succeeded)."), 409, "Conflict" },
        { new InvalidRequestException("config.epochs must be an integer, got \"two\"."), 400, "Bad request" },
        { new MalformedBodyException(MultipartForms.MalformedDetail), 400, "Malformed multipart body" },
        { new UnsupportedInputException("Content type 'text/plain' is not accepted."), 415, "Unsupported media type" },
        { new UnusableInputException("The file is a backbone, not a tokenizer."), 422, "Unprocessable image or file" },
        { new TooLargeException("The upload is 9 bytes; the limit is 8 bytes (Limits:MaxImportBytes)."), 413, "Payload too large" },
        { new CapacityException("Another model import is in progress; retry shortly."), 429, "Too many requests" },
        { new ModelNotReadyException("No tokenizer model is registered."), 503, "Model not ready" },
        { new InsufficientStorageException("Not enough storage for the upload."), 507, "Insufficient storage" },
        { new StateUnavailableException("The job database stayed unreachable for 60 s; try again when it is back."), 503, "Job database unavailable" },
    };

    [Theory]
    [MemberData(nameof(DomainErrors))]
    public async Task Each_domain_error_becomes_its_status_title_and_message(Exception error, int status, string title)
    {
        var (response, problem) = await HandleAsync(error);

        Assert.Equal(status, response.StatusCode);
        Assert.Equal("application/problem+json", response.ContentType?.Split(';')[0]);
        Assert.Equal(status, problem.GetProperty("status").GetInt32());
        Assert.Equal(title, problem.GetProperty("title").GetString());
        Assert.Equal(error.Message, problem.GetProperty("detail").GetString());
        // 429 and an unreachable job database tell the client when to come back; no other answer does.
        Assert.Equal(status == 429 ? "1" : error is StateUnavailableException ? "5" : null, response.Headers.RetryAfter.FirstOrDefault());
        AssertNothingInternal(problem);
    }

    [Theory]
    [InlineData(DatasetError.InvalidArchive, 400, "Bad request")]
    [InlineData(DatasetError.TooLarge, 413, "Payload too large")]
    [InlineData(DatasetError.InsufficientStorage, 507, "Insufficient storage")]
    [InlineData(DatasetError.UnsafeArchive, 422, "Unprocessable image or file")]
    [InlineData(DatasetError.InvalidLayout, 422, "Unprocessable image or file")]
    [InlineData(DatasetError.InvalidMask, 422, "Unprocessable image or file")]
    [InlineData(DatasetError.InvalidData, 422, "Unprocessable image or file")]
    [InlineData(DatasetError.CorruptImage, 422, "Unprocessable image or file")]
    [InlineData(DatasetError.NotFound, 422, "Unprocessable image or file")]
    public async Task Dataset_errors_of_the_ml_library_map_like_the_dataset_upload_answers(DatasetError kind, int status, string title)
    {
        var inner = new IOException("System.IO.IOException deep down");
        var (response, problem) = await HandleAsync(new DatasetException(kind, "images/a.png: not a PNG.", inner));

        Assert.Equal(status, response.StatusCode);
        Assert.Equal(title, problem.GetProperty("title").GetString());
        Assert.Equal("images/a.png: not a PNG.", problem.GetProperty("detail").GetString());
        AssertNothingInternal(problem);
    }

    [Fact]
    public async Task Checkpoint_and_image_errors_of_the_ml_library_keep_their_answers()
    {
        var (checkpoint, c) = await HandleAsync(new CheckpointException("BEiT vision transformer", ["head.weight"], [], []));
        Assert.Equal(422, checkpoint.StatusCode);
        Assert.Equal("Unusable checkpoint", c.GetProperty("title").GetString());
        Assert.Contains("missing keys: head.weight", c.GetProperty("detail").GetString());

        var (image, i) = await HandleAsync(new ImageDecodeException(ImageDecodeError.UnknownFormat, "The data is not an image."));
        Assert.Equal(415, image.StatusCode);
        Assert.Equal("Not an image", i.GetProperty("title").GetString());
    }

    [Fact]
    public async Task A_server_path_or_exception_type_in_a_domain_message_does_not_reach_the_client()
    {
        var (_, problem) = await HandleAsync(new NotFoundException(
            "The Fashion-MNIST files are gone from '/srv/beitv2/private/fashion' (System.IO.DirectoryNotFoundException)."));

        var detail = problem.GetProperty("detail").GetString()!;
        Assert.DoesNotContain("/srv/beitv2", detail);
        Assert.DoesNotContain("DirectoryNotFoundException", detail);
        Assert.StartsWith("The Fashion-MNIST files are gone from", detail);
    }

    [Fact]
    public async Task Any_other_exception_is_a_500_that_tells_nothing()
    {
        var (response, problem) = await HandleAsync(new InvalidOperationException("secret state at /srv/beitv2/x"));

        Assert.Equal(500, response.StatusCode);
        Assert.Equal("An unexpected error occurred; it has been logged.", problem.GetProperty("detail").GetString());
        AssertNothingInternal(problem);
    }

    [Fact]
    public void Every_domain_error_kind_has_an_answer_of_its_own()
    {
        var kinds = typeof(DomainException).Assembly.GetTypes()
            .Where(t => t.IsSubclassOf(typeof(DomainException)) && !t.IsAbstract).ToList();
        Assert.NotEmpty(kinds);
        var mapped = DomainErrors().Select(row => row[0].GetType()).ToHashSet();
        foreach (var kind in kinds)
        {
            var (status, title, _) = ProblemExceptionHandler.Classify((Exception)Activator.CreateInstance(kind, "why")!);
            Assert.True(status is >= 400 and < 500 or 503 or 507, $"{kind.Name} maps to {status}");
            Assert.NotEqual("Internal error", title);
            Assert.Contains(kind, mapped);   // and the theory above pins its status and title
        }
    }

    private static async Task<(HttpResponse Response, JsonElement Problem)> HandleAsync(Exception error)
    {
        var services = new ServiceCollection().AddLogging().AddProblemDetails().BuildServiceProvider();
        var context = new DefaultHttpContext { RequestServices = services };
        context.Request.Path = "/api/v1/test";
        var body = new MemoryStream();
        context.Response.Body = body;
        var handler = new ProblemExceptionHandler(services.GetRequiredService<IProblemDetailsService>(),
            NullLogger<ProblemExceptionHandler>.Instance);

        Assert.True(await handler.TryHandleAsync(context, error, CancellationToken.None));

        using var doc = JsonDocument.Parse(body.ToArray());
        return (context.Response, doc.RootElement.Clone());
    }

    private static void AssertNothingInternal(JsonElement problem)
    {
        var text = problem.GetRawText();
        Assert.DoesNotContain("Exception", text);
        Assert.DoesNotContain("BeitV2.", text);
        Assert.DoesNotContain("/srv/", text);
        Assert.DoesNotContain("stack", text, StringComparison.OrdinalIgnoreCase);
    }
}
