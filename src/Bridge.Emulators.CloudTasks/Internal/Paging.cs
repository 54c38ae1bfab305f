using System.Text;

namespace Bridge.Emulators.CloudTasks.Internal;

/// <summary>Page sizes and opaque page tokens (the last name of the previous page).</summary>
internal static class Paging
{
    public const int DefaultPageSize = 1000;
    public const int MaxQueuePageSize = 9800;
    public const int MaxTaskPageSize = 1000;

    public static int PageSize(int requested, int max) => requested switch
    {
        < 0 => throw Errors.InvalidArgument("page_size", $"page_size must not be negative; got {requested}."),
        0 => Math.Min(DefaultPageSize, max),
        _ => Math.Min(requested, max),
    };

    /// <summary>A token for "after this sequence" (ListTasks, in creation order).</summary>
    public static string EncodeSequenceToken(long lastSequence) => EncodeToken("s" + lastSequence.ToString(System.Globalization.CultureInfo.InvariantCulture));

    /// <summary>The sequence to continue after; 0 for the first page.</summary>
    public static long DecodeSequenceToken(string token)
    {
        var text = DecodeToken(token);
        if (text.Length == 0)
        {
            return 0;
        }

        return text.StartsWith('s') && long.TryParse(text.AsSpan(1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var sequence)
            ? sequence
            : throw Errors.InvalidArgument("page_token", "page_token is not a token this server issued.");
    }

    public static string EncodeToken(string lastName) => Convert.ToBase64String(Encoding.UTF8.GetBytes(lastName));

    /// <summary>The name to continue after; empty for the first page.</summary>
    public static string DecodeToken(string token)
    {
        if (string.IsNullOrEmpty(token))
        {
            return string.Empty;
        }

        try
        {
            return Encoding.UTF8.GetString(Convert.FromBase64String(token));
        }
        catch (FormatException)
        {
            throw Errors.InvalidArgument("page_token", "page_token is not a token this server issued.");
        }
    }
}
