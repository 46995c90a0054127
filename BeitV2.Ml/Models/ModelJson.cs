using System.Text.Json;
using System.Text.Json.Serialization;

namespace BeitV2.Ml.Models;

/// <summary>
/// JSON settings for model configs. Property names are the reference constructor's keyword
/// arguments (snake_case), so a config written by the official code or by the fixture generator
/// deserialises as is. Unknown keys are an error: a flag we silently ignored would give a model
/// that loads but computes something else.
/// </summary>
public static class ModelJson
{
    public static readonly JsonSerializerOptions Options = Create();

    private static JsonSerializerOptions Create()
    {
        var o = new JsonSerializerOptions
        {
            PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
            UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
            WriteIndented = true,
            NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        };
        return o;
    }

    public static T Deserialize<T>(JsonElement element, string what)
    {
        try
        {
            return element.Deserialize<T>(Options)
                   ?? throw new InvalidDataException($"The {what} config is null.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"Invalid {what} config: {e.Message}", e);
        }
    }
}

/// <summary>
/// Reads an image size given either as a number or, as the DINO reference does, as a one-element
/// list (<c>img_size=[224]</c>). Always writes a number.
/// </summary>
public sealed class IntOrFirstOfListConverter : JsonConverter<int>
{
    public override int Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType == JsonTokenType.Number) return reader.GetInt32();
        if (reader.TokenType == JsonTokenType.StartArray)
        {
            reader.Read();
            var v = reader.GetInt32();
            reader.Read();
            if (reader.TokenType != JsonTokenType.EndArray)
                throw new JsonException("Only square sizes are supported: expected a single-element list.");
            return v;
        }
        throw new JsonException($"Expected a number or a one-element list, got {reader.TokenType}.");
    }

    public override void Write(Utf8JsonWriter writer, int value, JsonSerializerOptions options) => writer.WriteNumberValue(value);
}
