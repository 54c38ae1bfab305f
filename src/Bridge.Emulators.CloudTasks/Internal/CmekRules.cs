namespace Bridge.Emulators.CloudTasks.Internal;

/// <summary>CMEK config names and keys: one config per location, a key of the same location or none.</summary>
internal static class CmekRules
{
    public const string Suffix = "/cmekConfig";

    /// <summary>The location of <c>projects/&lt;p&gt;/locations/&lt;l&gt;/cmekConfig</c>.</summary>
    public static string ParseConfigName(string name, string field)
    {
        if (!name.EndsWith(Suffix, StringComparison.Ordinal))
        {
            throw Errors.InvalidArgument(field, $"'{name}' must be 'projects/<project>/locations/<location>/cmekConfig'.");
        }

        return QueueRules.ParseLocationName(name[..^Suffix.Length], field).ToString();
    }

    public static void ValidateKey(string location, string key, string field)
    {
        if (key.Length > 0 && !(key.StartsWith(location + "/keyRings/", StringComparison.Ordinal) && key.Contains("/cryptoKeys/", StringComparison.Ordinal)))
        {
            throw Errors.InvalidArgument(field, $"kms_key must be '{location}/keyRings/<ring>/cryptoKeys/<key>' (same location) or empty.");
        }
    }
}
