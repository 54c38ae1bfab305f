using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Encodings.Web;

namespace Bridge.Dashboard.Internal;

/// <summary>HTML that is already safe to write as is: only <see cref="Html.Of"/> and the layout make it.</summary>
internal readonly record struct Markup(string Value)
{
    public static readonly Markup Empty = new(string.Empty);

    public override string ToString() => Value;

    public static Markup Join(IEnumerable<Markup> parts)
    {
        var builder = new StringBuilder();
        foreach (var part in parts)
        {
            builder.Append(part.Value);
        }

        return new Markup(builder.ToString());
    }
}

/// <summary>
/// An interpolated string whose holes are HTML-encoded unless they are <see cref="Markup"/>: text from queues, tasks,
/// messages and spans can never become markup by accident.
/// </summary>
[InterpolatedStringHandler]
internal ref struct HtmlHandler
{
    private DefaultInterpolatedStringHandler _inner;

    public HtmlHandler(int literalLength, int formattedCount) => _inner = new DefaultInterpolatedStringHandler(literalLength, formattedCount, CultureInfo.InvariantCulture);

    public void AppendLiteral(string value) => _inner.AppendLiteral(value);

    public void AppendFormatted(Markup value) => _inner.AppendLiteral(value.Value);

    public void AppendFormatted(string? value) => _inner.AppendLiteral(HtmlEncoder.Default.Encode(value ?? string.Empty));

    public void AppendFormatted<T>(T value) => AppendFormatted(Convert.ToString(value, CultureInfo.InvariantCulture));

    public void AppendFormatted<T>(T value, string? format)
        where T : IFormattable => AppendFormatted(value.ToString(format, CultureInfo.InvariantCulture));

    public string ToStringAndClear() => _inner.ToStringAndClear();
}

internal static class Html
{
    public static Markup Of(ref HtmlHandler handler) => new(handler.ToStringAndClear());

    public static Markup Each<T>(IEnumerable<T> items, Func<T, Markup> render) => Markup.Join(items.Select(render));

    public static Markup If(bool condition, Func<Markup> render) => condition ? render() : Markup.Empty;

    /// <summary>A query string value, encoded for a URL (the result still goes through HTML encoding in an attribute).</summary>
    public static string Url(string value) => Uri.EscapeDataString(value);

    public static string Time(DateTimeOffset? time) => time is { } t ? t.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture) : "—";

    public static string Duration(TimeSpan duration) => duration.TotalMilliseconds < 1000
        ? duration.TotalMilliseconds.ToString("0.0", CultureInfo.InvariantCulture) + " ms"
        : duration.TotalSeconds.ToString("0.00", CultureInfo.InvariantCulture) + " s";
}
