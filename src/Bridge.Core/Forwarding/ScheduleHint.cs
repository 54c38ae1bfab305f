
namespace Bridge.Core.Forwarding;

/// <summary>An event's schedule hint as it arrived, with where it came from (for error messages).</summary>
public sealed record ScheduleHint(string? At, string AtSource, string? Delay, string DelaySource)
{
    public static ScheduleHint None { get; } = new(null, string.Empty, null, string.Empty);
}
