using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using BeitV2.Web.Tests.Api;

namespace BeitV2.Web.Tests.Jobs;

/// <summary>One collection written through two servers at once: their writers exclude each other through PostgreSQL.</summary>
public sealed partial class ScaleOutTests
{
    [Fact]
    public async Task UploadsThroughTwoServersAtOnce_AllLandOnce_AndBothServersSearchThem()
    {
        await WithTwoServersAsync(async (a, b, data) =>
        {
            const int Indexed = 40, Requests = 6;
            var created = await a.Client.PostAsJsonAsync("/api/v1/collections",
                new { name = "shared", dataset = "fashion-mnist", maxImages = Indexed, config = new { batchSize = 20 } }).JsonAsync(HttpStatusCode.Accepted);
            var id = created.Str("id");
            await Jobs.WaitAsync(b.Client, created.Str("job"), Timeout, "succeeded");

            // Both servers add images at the same moment, several requests each; every request's items are numbered
            // after what was committed before it, whichever server committed that.
            var sneaker = File.ReadAllBytes(Path.Combine(FixturePaths.RepoRoot, "wwwroot", "samples", "fashion-9-sneaker.png"));
            var uploads = Enumerable.Range(0, 2 * Requests).Select(async i =>
            {
                var server = i % 2 == 0 ? a : b;
                using var form = new MultipartFormDataContent();
                form.Add(Http.Part(sneaker, "image/png"), "image", $"upload-{i}.png");
                var added = await server.Client.PostAsync($"/api/v1/collections/{id}/images", form).JsonAsync();
                return added.Items("added").Select(x => (Item: x.GetProperty("item").GetInt64(), File: x.Str("fileName"))).Single();
            }).ToList();
            var items = await Task.WhenAll(uploads);
            Assert.Equal(Enumerable.Range(Indexed, 2 * Requests).Select(i => (long)i), items.Select(x => x.Item).Order());

            foreach (var server in new[] { a, b })
            {
                var c = await server.Client.GetAsync($"/api/v1/collections/{id}").JsonAsync();
                Assert.Equal(Indexed + 2 * Requests, c.GetProperty("items").GetInt64());
                foreach (var (item, file) in items)
                    Assert.Equal(file, (await server.Client.GetAsync($"/api/v1/collections/{id}/items/{item}").JsonAsync()).Str("source"));
                // The uploads are identical images: searching by one finds uploads (score 1) first, on either server.
                var results = (await server.Client.PostAsync($"/api/v1/collections/{id}/search?item={items[0].Item}&k={2 * Requests}", null).JsonAsync())
                    .Items("results").ToList();
                Assert.All(results, r => Assert.InRange(r.GetProperty("score").GetDouble(), 0.999, 1.0001));
                Assert.Equal(items.Select(x => x.Item).Order(), results.Select(r => r.GetProperty("item").GetInt64()).Order());
            }
        });
    }
}
