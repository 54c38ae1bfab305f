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
        var input = Encoding.UTF8.GetBytes($"{route.ToLowerInvariant()}\n{identity.Kind}\n{identity.Value}");
        return Convert.ToHexStringLower(SHA256.HashData(input));
    }
}
