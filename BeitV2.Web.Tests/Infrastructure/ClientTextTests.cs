using BeitV2.Web.Infrastructure;

namespace BeitV2.Web.Tests.Infrastructure;

/// <summary>Text a client reads carries no .NET exception type name, qualified or bare.</summary>
public sealed class ClientTextTests
{
    [Theory]
    [InlineData("Image 0: failed (InvalidImageContentException: Input stream is short.)", "Image 0: failed (Input stream is short.)")]
    [InlineData("the ONNX path failed (IOException)", "the ONNX path failed (an internal error)")]
    [InlineData("System.IO.IOException: disk full", "an internal error: disk full")]
    public void ExceptionTypeNames_BecomeWords(string text, string expected) =>
        Assert.Equal(expected, ClientText.Scrub(text));
}
