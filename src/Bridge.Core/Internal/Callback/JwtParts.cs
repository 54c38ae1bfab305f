using System.Buffers.Text;
using System.Text.Json;

namespace Bridge.Core.Internal;

/// <summary>The header fields the verifier reads: whether <c>alg</c> is RS256 (compared as UTF-8, no string built), <c>kid</c>, <c>crit</c>.</summary>
internal readonly record struct JwtHeader(bool IsRs256, string? Kid, bool HasCrit);

/// <summary>The claims the verifier reads; <see cref="Duplicated"/> is set when one of them appears twice.</summary>
internal sealed class JwtClaims
{
    public string? Issuer { get; set; }

    public List<string> Audiences { get; } = new(2);

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

    public static JwtClaims? TryReadClaims(ReadOnlySpan<char> segment)
    {
        if (!FitsBuffer(segment))
        {
            return null;
        }

        Span<byte> buffer = stackalloc byte[Base64Url.GetMaxDecodedLength(segment.Length)];
        if (!TryDecode(segment, buffer, out var json))
        {
            return null;
        }

        var claims = new JwtClaims();
        Span<byte> seen = stackalloc byte[7];
        try
        {
            var reader = new Utf8JsonReader(json);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return null;
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
                        claims.Issuer = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
                        break;
                    case 1:
                        ReadAudience(ref reader, claims);
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

            return reader.TokenType != JsonTokenType.EndObject || reader.Read() ? null : claims;
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            // InvalidOperationException: a string with a lone UTF-16 surrogate escape (\ud800) can't be read.
            return null;
        }
    }

    private static void ReadAudience(ref Utf8JsonReader reader, JwtClaims claims)
    {
        if (reader.TokenType == JsonTokenType.String)
        {
            claims.Audiences.Add(reader.GetString()!);
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
                claims.Audiences.Add(reader.GetString()!);
            }
            else
            {
                claims.AudienceMalformed = true;
                reader.Skip();
            }
        }
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
