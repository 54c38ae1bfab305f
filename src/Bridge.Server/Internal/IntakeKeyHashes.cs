using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Bridge.Server.Internal;

/// <summary>The accepted keys, held as SHA-256 hashes only and compared in constant time.</summary>
internal sealed class IntakeKeyHashes
{
    /// <summary>Longer presented keys are refused unhashed (function keys are 56 characters).</summary>
    public const int MaxKeyLength = 512;

    private static readonly char[] Separators = [',', ';', ' ', '\t', '\r', '\n'];
    private readonly byte[][] _hashes;

    public IntakeKeyHashes(IEnumerable<string> entries)
    {
        _hashes = [.. Split(entries).Select(h => Convert.FromHexString(h))];
    }

    public bool IsEmpty => _hashes.Length == 0;

    /// <summary>Every hash is compared, so the time taken says nothing about which one (or how much of it) matched.</summary>
    public bool Accepts(string key)
    {
        if (key.Length is 0 or > MaxKeyLength)
        {
            return false;
        }

        Span<byte> presented = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(Encoding.UTF8.GetBytes(key), presented);
        var accepted = false;
        foreach (var hash in _hashes)
        {
            accepted |= CryptographicOperations.FixedTimeEquals(presented, hash);
        }

        return accepted;
    }

    /// <summary>The hashes of the entries (several per entry allowed).</summary>
    public static IEnumerable<string> Split(IEnumerable<string> entries) =>
        entries.SelectMany(e => (e ?? string.Empty).Split(Separators, StringSplitOptions.RemoveEmptyEntries));

    /// <summary>Start-up check: each hash is 64 hex digits. The message names the setting, never the value.</summary>
    public static IEnumerable<string> Validate(IReadOnlyList<string> entries)
    {
        for (var i = 0; i < entries.Count; i++)
        {
            var parts = Split([entries[i]]).ToArray();
            for (var j = 0; j < parts.Length; j++)
            {
                if (parts[j].Length != 64 || !parts[j].All(char.IsAsciiHexDigit))
                {
                    yield return string.Create(CultureInfo.InvariantCulture,
                        $"{IntakeAuthenticationOptions.SectionName}:KeyHashes:{i} (hash {j + 1}) is not a SHA-256 hash of 64 hex digits: store the hash of a key, never the key (printf %s \"$key\" | sha256sum).");
                }
            }
        }
    }
}
