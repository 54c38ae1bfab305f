using System.Globalization;
using System.Xml;
using Bridge.Core.Forwarding;
using Bridge.Core.Routing;

namespace Bridge.Core.Internal;

/// <summary>Turns an event's schedule hint (absolute time or delay) or its route's default into a schedule time.</summary>
internal static class ScheduleRules
{
    /// <summary>Cloud Tasks accepts schedule times at most 720 hours ahead.</summary>
    public static readonly TimeSpan MaxAhead = TimeSpan.FromDays(30);

    /// <summary>
    /// The task's schedule time. Past times mean now. Beyond 30 days: a permanent error, or the horizon under the
    /// Clamp policy. Null: dispatch as soon as possible.
    /// </summary>
    public static DateTimeOffset? Resolve(ScheduleHint hint, RouteOptions route, DateTimeOffset now)
    {
        DateTimeOffset? at = null;
        if (hint.At is { } text)
        {
            at = ParseTime(text, hint.AtSource);
        }
        else if (hint.Delay is { } delayText)
        {
            var delay = ParseDelay(delayText, hint.DelaySource);
            if (delay > MaxAhead)
            {
                // Checked before adding: a delay of thousands of years would overflow the clock.
                return route.SchedulePolicy == SchedulePolicy.Clamp
                    ? now + MaxAhead
                    : throw new ForwardingException(ForwardingFailureReason.InvalidSchedule, $"{hint.DelaySource} '{Shorten(delayText)}' is {delay.TotalHours:F0}h ahead; Cloud Tasks accepts at most 720h (30 days).");
            }

            at = now + delay;
        }
        else if (route.DefaultDelay is { } defaultDelay && defaultDelay > TimeSpan.Zero)
        {
            at = now + defaultDelay;
        }

        if (at is null)
        {
            return null;
        }

        if (at <= now)
        {
            return now;
        }

        if (at > now + MaxAhead)
        {
            if (route.SchedulePolicy == SchedulePolicy.Clamp)
            {
                return now + MaxAhead;
            }

            throw new ForwardingException(ForwardingFailureReason.InvalidSchedule, $"Schedule time {at.Value.UtcDateTime:O} is {(at.Value - now).TotalHours:F0}h ahead; Cloud Tasks accepts at most 720h (30 days).");
        }

        return at;
    }

    public static DateTimeOffset ParseTime(string text, string source)
    {
        if (DateTimeOffset.TryParseExact(text.Trim(), ["yyyy-MM-dd'T'HH:mm:ss.FFFFFFFK", "yyyy-MM-dd'T'HH:mm:ssK"], CultureInfo.InvariantCulture, DateTimeStyles.None, out var at)
            && (text.EndsWith('Z') || text.EndsWith('z') || text.Contains('+', StringComparison.Ordinal) || text.LastIndexOf('-') > 10))
        {
            return at;
        }

        throw new ForwardingException(ForwardingFailureReason.InvalidSchedule, $"{source} '{Shorten(text)}' is not an RFC 3339 time with an offset (e.g. 2026-12-01T10:00:00Z).");
    }

    /// <summary>A delay as seconds (<c>90</c>, <c>1.5</c>), <c>hh:mm:ss</c>, or ISO 8601 (<c>PT5M</c>).</summary>
    public static TimeSpan ParseDelay(string text, string source)
    {
        var trimmed = text.Trim();
        TimeSpan delay;
        if (double.TryParse(trimmed, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) && double.IsFinite(seconds) && Math.Abs(seconds) < TimeSpan.MaxValue.TotalSeconds)
        {
            delay = TimeSpan.FromSeconds(seconds);
        }
        else if (trimmed.Contains(':', StringComparison.Ordinal) && TimeSpan.TryParse(trimmed, CultureInfo.InvariantCulture, out var span))
        {
            delay = span;
        }
        else if (trimmed.StartsWith('P') && TryIso8601(trimmed, out var iso))
        {
            delay = iso;
        }
        else
        {
            throw new ForwardingException(ForwardingFailureReason.InvalidSchedule, $"{source} '{Shorten(text)}' is not a delay: use seconds (90), hh:mm:ss, or ISO 8601 (PT5M).");
        }

        if (delay < TimeSpan.Zero)
        {
            throw new ForwardingException(ForwardingFailureReason.InvalidSchedule, $"{source} '{Shorten(text)}' is negative.");
        }

        return delay;
    }

    private static bool TryIso8601(string text, out TimeSpan value)
    {
        try
        {
            value = XmlConvert.ToTimeSpan(text);
            return true;
        }
        catch (FormatException)
        {
            value = default;
            return false;
        }
        catch (OverflowException)
        {
            value = default;
            return false;
        }
    }

    private static string Shorten(string value) => value.Length <= 64 ? value : string.Concat(value.AsSpan(0, 61), "...");
}
