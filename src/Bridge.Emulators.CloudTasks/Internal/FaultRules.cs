using System.Globalization;
using Grpc.Core;

namespace Bridge.Emulators.CloudTasks.Internal;

/// <summary>Which RPCs a fault may name, how a name matches a call, and the limits of a fault.</summary>
internal static class FaultRules
{
    public const int MaxMethods = 50;

    public const int MaxCount = 1_000_000;

    /// <summary>Every RPC the emulator serves, as <c>package.Service/Method</c>.</summary>
    public static readonly IReadOnlySet<string> KnownMethods = new[]
    {
        Bridge.CloudTasks.V2Beta3.CloudTasks.Descriptor,
        V2.CloudTasks.Descriptor,
        Location.Locations.Descriptor,
        Bridge.CloudTasks.LongRunning.Operations.Descriptor,
    }.SelectMany(s => s.Methods.Select(m => $"{s.FullName}/{m.Name}")).ToHashSet(StringComparer.Ordinal);

    /// <summary>A short name (<c>CreateTask</c>) matches the method in every service; a full one only itself.</summary>
    public static bool MethodMatches(string name, string fullMethod)
    {
        var call = fullMethod.AsSpan().TrimStart('/');
        return name.Contains('/', StringComparison.Ordinal)
            ? call.SequenceEqual(name.AsSpan().TrimStart('/'))
            : call.EndsWith("/" + name, StringComparison.Ordinal);
    }

    public static bool IsKnown(string name) => name.Contains('/', StringComparison.Ordinal)
        ? KnownMethods.Contains(name.TrimStart('/'))
        : KnownMethods.Any(m => m.EndsWith("/" + name, StringComparison.Ordinal));

    /// <summary>What is wrong with a fault, or null.</summary>
    public static string? Validate(StatusCode status, IReadOnlyList<string> methods, TimeSpan? duration, int? count)
    {
        if (status == StatusCode.OK || !Enum.IsDefined(status))
        {
            return $"status '{status}' is not a failure; use one of {string.Join(", ", Enum.GetValues<StatusCode>().Where(s => s != StatusCode.OK).Select(GoogleErrorEnvelope.StatusName))}.";
        }

        if (methods.Count > MaxMethods)
        {
            return $"methods names {methods.Count} RPCs; at most {MaxMethods}.";
        }

        if (methods.FirstOrDefault(m => !IsKnown(m)) is { } unknown)
        {
            return $"methods entry '{unknown}' is not an RPC the emulator serves (e.g. 'CreateTask' or 'google.cloud.tasks.v2.CloudTasks/CreateTask').";
        }

        if (duration is { } d && (d <= TimeSpan.Zero || d > EmulatorFaults.MaxDuration))
        {
            return $"duration '{d.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s' must be above zero and at most {EmulatorFaults.MaxDuration.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s.";
        }

        if (count is { } c && c is <= 0 or > MaxCount)
        {
            return $"count '{c}' must be from 1 to {MaxCount}.";
        }

        return null;
    }

    /// <summary>A status as a canonical name (<c>UNAVAILABLE</c>, any case) or its number.</summary>
    public static bool TryParseStatus(string text, out StatusCode status)
    {
        if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var number) && Enum.IsDefined((StatusCode)number))
        {
            status = (StatusCode)number;
            return true;
        }

        foreach (var candidate in Enum.GetValues<StatusCode>())
        {
            if (string.Equals(GoogleErrorEnvelope.StatusName(candidate), text, StringComparison.OrdinalIgnoreCase)
                || string.Equals(candidate.ToString(), text, StringComparison.OrdinalIgnoreCase))
            {
                status = candidate;
                return true;
            }
        }

        status = default;
        return false;
    }
}
