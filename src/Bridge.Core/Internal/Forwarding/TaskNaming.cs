using System.Security.Cryptography;
using System.Text;
using Bridge.Core.Forwarding;

namespace Bridge.Core.Internal;

/// <summary>
/// Task ids from event identities: a SHA-256 of route, identity kind and value, in hex. The same event always maps
/// to the same id (so a redelivery meets ALREADY_EXISTS), ids are valid Cloud Tasks ids, and they spread evenly
/// (sequential names slow the service down).
/// </summary>
internal static class TaskNaming
{
    public static string TaskId(string route, EventIdentity identity)
    {
        // The UTF-8 of "{route lower-cased}\n{kind}\n{value}", encoded part by part into one buffer rather than through
        // a string, a byte array and a hash array per event ('\n' splits the parts, so the bytes are the same).
        var lowerRoute = route.ToLowerInvariant();
        var length = Encoding.UTF8.GetByteCount(lowerRoute) + Encoding.UTF8.GetByteCount(identity.Kind) + Encoding.UTF8.GetByteCount(identity.Value) + 2;
        var bytes = length <= 1024 ? stackalloc byte[length] : new byte[length];
        var written = Encoding.UTF8.GetBytes(lowerRoute, bytes);
        bytes[written++] = (byte)'\n';
        written += Encoding.UTF8.GetBytes(identity.Kind, bytes[written..]);
        bytes[written++] = (byte)'\n';
        Encoding.UTF8.GetBytes(identity.Value, bytes[written..]);
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(bytes, hash);
        return Convert.ToHexStringLower(hash);
    }
}
