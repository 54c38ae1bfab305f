using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Bridge.Emulators.ServiceBus.Internal;

/// <summary>
/// Checks Service Bus shared access signatures (<c>SharedAccessSignature sr=…&amp;sig=…&amp;se=…&amp;skn=…</c>): the key
/// name, the HMAC-SHA256 of <c>sr + "\n" + se</c> under the key, and the expiry. Nothing else grants access.
/// </summary>
internal sealed class SasTokenValidator(string keyName, string key, TimeProvider time)
{
    const int MaxTokenLength = 4096;
    readonly byte[] keyBytes = Encoding.UTF8.GetBytes(key);

    /// <summary>A verified token: the resource path it covers (no scheme or host, no leading slash) and when it ends.</summary>
    public sealed record Grant(string ResourcePath, DateTimeOffset ExpiresAt);

    public bool TryValidate(string? token, out Grant? grant, out string error)
    {
        grant = null;
        const string prefix = "SharedAccessSignature ";
        if (string.IsNullOrEmpty(token) || token.Length > MaxTokenLength || !token.StartsWith(prefix, StringComparison.Ordinal))
        {
            error = "The token is not a shared access signature.";
            return false;
        }

        string? sr = null, sig = null, se = null, skn = null;
        foreach (var part in token[prefix.Length..].Split('&'))
        {
            var eq = part.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                continue;
            }

            var name = part[..eq];
            var value = part[(eq + 1)..];
            switch (name)
            {
                case "sr": sr = value; break;
                case "sig": sig = value; break;
                case "se": se = value; break;
                case "skn": skn = value; break;
            }
        }

        if (sr is null || sig is null || se is null || skn is null)
        {
            error = "The shared access signature lacks one of sr, sig, se, skn.";
            return false;
        }

        if (!string.Equals(Uri.UnescapeDataString(skn), keyName, StringComparison.Ordinal))
        {
            error = "The shared access signature names an unknown key.";
            return false;
        }

        if (!long.TryParse(se, NumberStyles.None, CultureInfo.InvariantCulture, out var expiry))
        {
            error = "The shared access signature's expiry is not a number.";
            return false;
        }

        // The signature covers the resource exactly as it appears in the token (still URL-encoded).
        var expected = HMACSHA256.HashData(keyBytes, Encoding.UTF8.GetBytes(sr + "\n" + se));
        byte[] actual;
        try
        {
            actual = Convert.FromBase64String(Uri.UnescapeDataString(sig));
        }
        catch (FormatException)
        {
            error = "The shared access signature's signature is not base64.";
            return false;
        }

        if (!CryptographicOperations.FixedTimeEquals(expected, actual))
        {
            error = "The shared access signature does not match the key.";
            return false;
        }

        var expiresAt = DateTimeOffset.FromUnixTimeSeconds(Math.Min(expiry, 253402300799));
        if (expiresAt <= time.GetUtcNow())
        {
            error = "The shared access signature has expired.";
            return false;
        }

        grant = new Grant(EntityAddress.Normalize(Uri.UnescapeDataString(sr)), expiresAt);
        error = "";
        return true;
    }
}

/// <summary>Link addresses as clients write them: "queue", "/queue", "amqps://host/queue", any case.</summary>
internal static class EntityAddress
{
    public static string Normalize(string? address)
    {
        if (string.IsNullOrEmpty(address))
        {
            return "";
        }

        var path = address;
        var scheme = address.IndexOf("://", StringComparison.Ordinal);
        if (scheme > 0)
        {
            var slash = address.IndexOf('/', scheme + 3);
            path = slash < 0 ? "" : address[(slash + 1)..];
        }

        var query = path.IndexOfAny(['?', '#']);
        if (query >= 0)
        {
            path = path[..query];
        }

        return path.Trim('/').ToLowerInvariant();
    }

    /// <summary>True when a grant for <paramref name="grantPath"/> covers <paramref name="path"/> (itself or anything under it).</summary>
    public static bool Covers(string grantPath, string path) =>
        grantPath.Length == 0 ||
        string.Equals(grantPath, path, StringComparison.Ordinal) ||
        (path.StartsWith(grantPath, StringComparison.Ordinal) && path.Length > grantPath.Length && path[grantPath.Length] == '/');
}
