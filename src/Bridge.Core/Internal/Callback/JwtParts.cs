using System.Buffers.Text;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;

namespace Bridge.Core.Internal;

/// <summary>The header fields the verifier reads: whether <c>alg</c> is RS256 (compared as UTF-8, no string built), <c>kid</c>, <c>crit</c>.</summary>
internal readonly record struct JwtHeader(bool IsRs256, string? Kid, bool HasCrit);

/// <summary>
/// The strings a claim may equal (the trusted issuers, the accepted audiences), each also held as UTF-8, so a claim is
/// compared as the token's bytes without a string made of it. Ordinal equality of strings is equality of their UTF-8.
/// </summary>
internal sealed class Utf8Choices
{
    private static readonly UTF8Encoding Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly string[] _values;
    private readonly byte[]?[] _utf8;
    private readonly string[][] _singletons;

    public Utf8Choices(IEnumerable<string> values)
    {
        _values = values.Distinct(StringComparer.Ordinal).ToArray();
        _utf8 = Array.ConvertAll(_values, Utf8OrNull);
        _singletons = Array.ConvertAll(_values, v => new[] { v });
    }

    public int Count => _values.Length;

    public string this[int index] => _values[index];

    /// <summary>A list holding only the choice at <paramref name="index"/>, made once (not per token).</summary>
    public IReadOnlyList<string> Single(int index) => _singletons[index];

    /// <summary>
    /// The index of the choice equal to the JSON string the reader is on, or -1. An escaped string (JSON allows
    /// <c>https:\/\/…</c>) is unescaped first; raw bytes that match no choice must still be UTF-8, as a string made
    /// of them had to be (else <see cref="InvalidOperationException"/>, as reading the string would have thrown).
    /// </summary>
    public int Match(ref Utf8JsonReader reader)
    {
        if (reader.ValueIsEscaped)
        {
            return Array.IndexOf(_values, reader.GetString());
        }

        var raw = reader.ValueSpan; // one segment: the reader reads a span, never a sequence
        for (var i = 0; i < _utf8.Length; i++)
        {
            if (_utf8[i] is { } utf8 && raw.SequenceEqual(utf8))
            {
                return i;
            }
        }

        return Utf8.IsValid(raw) ? -1 : throw new InvalidOperationException("The claim is not UTF-8.");
    }

    // A value with a lone surrogate has no UTF-8: no token's bytes can equal it, and an escaped lone surrogate is refused.
    private static byte[]? Utf8OrNull(string value)
    {
        try
        {
            return Strict.GetBytes(value);
        }
        catch (EncoderFallbackException)
        {
            return null;
        }
    }
}

/// <summary>The claims the verifier reads; <see cref="Duplicated"/> is set when one of them appears twice. A struct: none allocated per token.</summary>
internal struct JwtClaims
{
    public JwtClaims()
    {
    }

    /// <summary>Which trusted issuer <c>iss</c> is; -1 when it is none of them, or missing.</summary>
    public int Issuer { get; set; } = -1;

    /// <summary>Which accepted audience <c>aud</c> names (the first, when it names several); -1 when none.</summary>
    public int Audience { get; set; } = -1;

    /// <summary>Every accepted audience <c>aud</c> names, when that is more than one (rare); else null.</summary>
    public List<string>? Audiences { get; set; }

    public bool AudienceMalformed { get; set; }

    public double? Expires { get; set; }

    public double? NotBefore { get; set; }

    public double? IssuedAt { get; set; }

    public string? Email { get; set; }

    public bool EmailVerified { get; set; }

    public bool Duplicated { get; set; }
}

/// <summary>
/// Allocation-light reading of a compact JWS's header and payload: base64url into a stack buffer, one forward pass
/// of Utf8JsonReader, only the members the verifier uses kept. Any malformed JSON or trailing data fails.
/// </summary>
internal static class JwtParts
{
    private const int MaxSegmentBytes = 6 * 1024;

    public static bool TryReadHeader(ReadOnlySpan<char> segment, out JwtHeader header)
    {
        header = default;
        if (!FitsBuffer(segment))
        {
            return false;
        }

        // Sized to the segment: a fixed 6 KiB buffer cost more to zero than the header costs to parse.
        Span<byte> buffer = stackalloc byte[Base64Url.GetMaxDecodedLength(segment.Length)];
        if (!TryDecode(segment, buffer, out var json))
        {
            return false;
        }

        try
        {
            var reader = new Utf8JsonReader(json);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return false;
            }

            string? kid = null;
            bool rs256 = false, crit = false;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("alg"u8))
                {
                    reader.Read();
                    rs256 = reader.TokenType == JsonTokenType.String && reader.ValueTextEquals("RS256"u8);
                }
                else if (reader.ValueTextEquals("kid"u8))
                {
                    reader.Read();
                    kid = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
                }
                else
                {
                    crit |= reader.ValueTextEquals("crit"u8);
                    reader.Read();
                    reader.Skip();
                }
            }

            if (reader.TokenType != JsonTokenType.EndObject || reader.Read())
            {
                return false; // not a single object, or something after it
            }

            header = new JwtHeader(rs256, kid, crit);
            return true;
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            // InvalidOperationException: a string with a lone UTF-16 surrogate escape (\ud800) can't be read.
            return false;
        }
    }

    /// <summary>
    /// The claims, with <c>iss</c> and <c>aud</c> read as which of <paramref name="issuers"/> and
    /// <paramref name="audiences"/> they are (the others are not trusted or accepted, so they are not kept).
    /// </summary>
    public static bool TryReadClaims(ReadOnlySpan<char> segment, Utf8Choices issuers, Utf8Choices audiences, out JwtClaims claims)
    {
        claims = new JwtClaims();
        if (!FitsBuffer(segment))
        {
            return false;
        }

        Span<byte> buffer = stackalloc byte[Base64Url.GetMaxDecodedLength(segment.Length)];
        if (!TryDecode(segment, buffer, out var json))
        {
            return false;
        }

        Span<byte> seen = stackalloc byte[7];
        try
        {
            var reader = new Utf8JsonReader(json);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return false;
            }

            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var slot = reader.ValueTextEquals("iss"u8) ? 0
                    : reader.ValueTextEquals("aud"u8) ? 1
                    : reader.ValueTextEquals("exp"u8) ? 2
                    : reader.ValueTextEquals("nbf"u8) ? 3
                    : reader.ValueTextEquals("iat"u8) ? 4
                    : reader.ValueTextEquals("email"u8) ? 5
                    : reader.ValueTextEquals("email_verified"u8) ? 6
                    : -1;
                reader.Read();
                if (slot < 0)
                {
                    reader.Skip();
                    continue;
                }

                if (++seen[slot] > 1)
                {
                    claims.Duplicated = true;
                }

                switch (slot)
                {
                    case 0:
                        claims.Issuer = reader.TokenType == JsonTokenType.String ? issuers.Match(ref reader) : -1;
                        break;
                    case 1:
                        ReadAudience(ref reader, ref claims, audiences);
                        break;
                    case 2:
                        claims.Expires = Number(ref reader);
                        break;
                    case 3:
                        claims.NotBefore = Number(ref reader);
                        break;
                    case 4:
                        claims.IssuedAt = Number(ref reader);
                        break;
                    case 5:
                        claims.Email = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
                        break;
                    default:
                        claims.EmailVerified = reader.TokenType == JsonTokenType.True || (reader.TokenType == JsonTokenType.String && reader.ValueTextEquals("true"u8));
                        break;
                }

                reader.Skip(); // a no-op for scalars; moves past arrays and objects
            }

            return reader.TokenType == JsonTokenType.EndObject && !reader.Read();
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            // InvalidOperationException: a string with a lone UTF-16 surrogate escape (\ud800) can't be read.
            return false;
        }
    }

    private static void ReadAudience(ref Utf8JsonReader reader, ref JwtClaims claims, Utf8Choices audiences)
    {
        if (reader.TokenType == JsonTokenType.String)
        {
            AddAudience(ref claims, audiences, audiences.Match(ref reader));
            return;
        }

        if (reader.TokenType != JsonTokenType.StartArray)
        {
            claims.AudienceMalformed = true;
            return;
        }

        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (reader.TokenType == JsonTokenType.String)
            {
                AddAudience(ref claims, audiences, audiences.Match(ref reader));
            }
            else
            {
                claims.AudienceMalformed = true;
                reader.Skip();
            }
        }
    }

    private static void AddAudience(ref JwtClaims claims, Utf8Choices audiences, int match)
    {
        if (match < 0 || match == claims.Audience || claims.Audiences?.Contains(audiences[match]) == true)
        {
            return;
        }

        if (claims.Audience < 0)
        {
            claims.Audience = match;
            return;
        }

        claims.Audiences ??= [audiences[claims.Audience]];
        claims.Audiences.Add(audiences[match]);
    }

    private static double? Number(ref Utf8JsonReader reader) =>
        reader.TokenType == JsonTokenType.Number && reader.TryGetDouble(out var value) && double.IsFinite(value) ? value : null;

    /// <summary>Whether the segment decodes into at most <see cref="MaxSegmentBytes"/>: larger ones are refused, not parsed.</summary>
    private static bool FitsBuffer(ReadOnlySpan<char> segment) => Base64Url.GetMaxDecodedLength(segment.Length) <= MaxSegmentBytes;

    private static bool TryDecode(ReadOnlySpan<char> segment, Span<byte> buffer, out ReadOnlySpan<byte> decoded)
    {
        decoded = default;
        int written;
        try
        {
            if (!Base64Url.TryDecodeFromChars(segment, buffer, out written))
            {
                return false;
            }
        }
        catch (FormatException)
        {
            return false; // not base64url at all
        }

        decoded = buffer[..written];
        return true;
    }
}
