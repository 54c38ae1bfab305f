using System.Diagnostics.CodeAnalysis;

namespace Bridge.CloudTasks.Internal;

/// <summary>
/// The id rules of the real service, so a malformed name fails here with a message that names the part,
/// rather than as an INVALID_ARGUMENT round trip.
/// </summary>
internal static class ResourceIdRules
{
    public const int MaxQueueIdLength = 100;
    public const int MaxTaskIdLength = 500;

    // Project ids may be domain-scoped ("example.com:my-project"), hence ':' and '.'.
    public const int MaxProjectIdLength = 100;
    public const int MaxLocationIdLength = 63;

    // The service does not document its operation id format: anything printable but '/' is accepted.
    public const int MaxOperationIdLength = 500;

    public static string RequireProjectId(string id) => TryValidateProjectId(id, out var error) ? id : throw new ArgumentException(error, nameof(id));

    public static string RequireLocationId(string id) => TryValidateLocationId(id, out var error) ? id : throw new ArgumentException(error, nameof(id));

    public static string RequireQueueId(string id) => TryValidateQueueId(id, out var error) ? id : throw new ArgumentException(error, nameof(id));

    public static string RequireTaskId(string id) => TryValidateTaskId(id, out var error) ? id : throw new ArgumentException(error, nameof(id));

    public static string RequireOperationId(string id) => TryValidateOperationId(id, out var error) ? id : throw new ArgumentException(error, nameof(id));

    public static bool TryValidateOperationId(string? id, out string error) =>
        Check("operation id", id, MaxOperationIdLength, c => c is > ' ' and < '\u007f' and not '/', "printable ASCII characters other than '/'", out error);

    public static bool TryValidateProjectId(string? id, out string error) =>
        Check("project id", id, MaxProjectIdLength, c => IsAsciiLetterOrDigit(c) || c is '-' or ':' or '.', "letters, digits, '-', ':' and '.'", out error);

    public static bool TryValidateLocationId(string? id, out string error) =>
        Check("location id", id, MaxLocationIdLength, c => IsAsciiLetterOrDigit(c) || c == '-', "letters, digits and '-'", out error);

    public static bool TryValidateQueueId(string? id, out string error) =>
        Check("queue id", id, MaxQueueIdLength, c => IsAsciiLetterOrDigit(c) || c == '-', "letters, digits and '-'", out error);

    public static bool TryValidateTaskId(string? id, out string error) =>
        Check("task id", id, MaxTaskIdLength, c => IsAsciiLetterOrDigit(c) || c is '-' or '_', "letters, digits, '-' and '_'", out error);

    /// <summary>Splits "k0/v0/k1/v1/..." and checks the collection keys, returning the ids.</summary>
    public static bool TrySplit(string? name, string[] keys, string template, [NotNullWhen(true)] out string[]? ids, out string error)
    {
        ids = null;
        if (string.IsNullOrEmpty(name))
        {
            error = $"Resource name is empty; expected '{template}'.";
            return false;
        }

        var parts = name.Split('/');
        if (parts.Length != keys.Length * 2)
        {
            error = $"Resource name '{Shorten(name)}' does not match '{template}'.";
            return false;
        }

        var result = new string[keys.Length];
        for (var i = 0; i < keys.Length; i++)
        {
            if (!string.Equals(parts[i * 2], keys[i], StringComparison.Ordinal))
            {
                error = $"Resource name '{Shorten(name)}' does not match '{template}': expected '{keys[i]}' where it has '{Shorten(parts[i * 2])}'.";
                return false;
            }

            result[i] = parts[(i * 2) + 1];
        }

        ids = result;
        error = string.Empty;
        return true;
    }

    private static bool Check(string what, string? id, int maxLength, Func<char, bool> allowed, string allowedText, out string error)
    {
        if (string.IsNullOrEmpty(id))
        {
            error = $"The {what} is empty.";
            return false;
        }

        if (id.Length > maxLength)
        {
            error = $"The {what} is {id.Length} characters long; at most {maxLength} are allowed.";
            return false;
        }

        for (var i = 0; i < id.Length; i++)
        {
            if (!allowed(id[i]))
            {
                error = $"The {what} '{Shorten(id)}' has the character '{id[i]}' at position {i}; only {allowedText} are allowed.";
                return false;
            }
        }

        error = string.Empty;
        return true;
    }

    private static bool IsAsciiLetterOrDigit(char c) => char.IsAsciiLetterOrDigit(c);

    // Never echo unbounded input into an error message.
    private static string Shorten(string value) => value.Length <= 120 ? value : string.Concat(value.AsSpan(0, 117), "...");
}
