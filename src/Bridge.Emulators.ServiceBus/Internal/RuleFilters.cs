using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Bridge.Emulators.ServiceBus.Internal;

/// <summary>Decides whether a subscription gets a copy of a message.</summary>
internal abstract class RuleFilter
{
    public abstract bool Matches(MessageView message);

    public static RuleFilter From(RuleDefinition rule) =>
        rule.Correlation is { } correlation ? new CorrelationRuleFilter(correlation)
        : rule.SqlExpression is { } sql ? SqlRuleFilter.Parse(sql)
        : TrueRuleFilter.Instance;
}

internal sealed class TrueRuleFilter : RuleFilter
{
    public static readonly TrueRuleFilter Instance = new();

    public override bool Matches(MessageView message) => true;
}

internal sealed class CorrelationRuleFilter(CorrelationFilterDefinition filter) : RuleFilter
{
    public override bool Matches(MessageView m) =>
        Same(filter.CorrelationId, m.CorrelationId) && Same(filter.MessageId, m.MessageId) && Same(filter.To, m.To) &&
        Same(filter.ReplyTo, m.ReplyTo) && Same(filter.Subject, m.Subject) && Same(filter.SessionId, m.SessionId) &&
        Same(filter.ReplyToSessionId, m.ReplyToSessionId) && Same(filter.ContentType, m.ContentType) &&
        filter.ApplicationProperties.All(p => m.ApplicationProperties.TryGetValue(p.Key, out var v) && SqlRuleFilter.ValuesEqual(p.Value, v));

    static bool Same(string? wanted, string? actual) => wanted is null || string.Equals(wanted, actual, StringComparison.Ordinal);
}

/// <summary>
/// The SQL filter subset subscriptions use most: comparisons (=, &lt;&gt;, !=, &lt;, &lt;=, &gt;, &gt;=) of system
/// properties (<c>sys.Label</c>, <c>sys.MessageId</c>, …) and application properties with literals, IS [NOT] NULL,
/// [NOT] IN (…), [NOT] LIKE, EXISTS(…), AND / OR / NOT and parentheses. Anything else is refused when the rule is read.
/// </summary>
internal sealed class SqlRuleFilter : RuleFilter
{
    readonly Func<MessageView, bool> predicate;

    SqlRuleFilter(Func<MessageView, bool> predicate) => this.predicate = predicate;

    public override bool Matches(MessageView message) => predicate(message);

    public static SqlRuleFilter Parse(string expression)
    {
        var parser = new Parser(Tokenize(expression), expression);
        var result = parser.ParseExpression();
        parser.ExpectEnd();
        return new SqlRuleFilter(result);
    }

    public static bool ValuesEqual(object? a, object? b)
    {
        if (a is null || b is null)
        {
            return false;
        }

        if (IsNumber(a) && IsNumber(b))
        {
            return Convert.ToDecimal(a, CultureInfo.InvariantCulture) == Convert.ToDecimal(b, CultureInfo.InvariantCulture);
        }

        return a is string sa && b is string sb ? string.Equals(sa, sb, StringComparison.Ordinal) : a.Equals(b);
    }

    static bool IsNumber(object value) => value is sbyte or byte or short or ushort or int or uint or long or ulong or float or double or decimal;

    static int? Compare(object? a, object? b)
    {
        if (a is null || b is null)
        {
            return null;
        }

        if (IsNumber(a) && IsNumber(b))
        {
            return Convert.ToDecimal(a, CultureInfo.InvariantCulture).CompareTo(Convert.ToDecimal(b, CultureInfo.InvariantCulture));
        }

        if (a is string sa && b is string sb)
        {
            return string.CompareOrdinal(sa, sb);
        }

        return a.Equals(b) ? 0 : null;
    }

    static object? Lookup(MessageView m, string name)
    {
        if (name.StartsWith("sys.", StringComparison.OrdinalIgnoreCase))
        {
            return name[4..].ToLowerInvariant() switch
            {
                "messageid" => m.MessageId,
                "correlationid" => m.CorrelationId,
                "to" => m.To,
                "replyto" => m.ReplyTo,
                "label" or "subject" => m.Subject,
                "sessionid" => m.SessionId,
                "replytosessionid" => m.ReplyToSessionId,
                "contenttype" => m.ContentType,
                _ => null,
            };
        }

        var key = name.StartsWith("user.", StringComparison.OrdinalIgnoreCase) ? name[5..] : name;
        return m.ApplicationProperties.TryGetValue(key, out var value) ? value : null;
    }

    enum Kind { Identifier, String, Number, Symbol, End }

    readonly record struct Token(Kind Kind, string Text, object? Value = null);

    static List<Token> Tokenize(string s)
    {
        var tokens = new List<Token>();
        var i = 0;
        while (i < s.Length)
        {
            var c = s[i];
            if (char.IsWhiteSpace(c))
            {
                i++;
            }
            else if (c == '\'')
            {
                var text = new StringBuilder();
                i++;
                while (true)
                {
                    if (i >= s.Length)
                    {
                        throw new FormatException($"SQL filter '{s}': a string literal is not closed.");
                    }

                    if (s[i] == '\'')
                    {
                        if (i + 1 < s.Length && s[i + 1] == '\'')
                        {
                            text.Append('\'');
                            i += 2;
                            continue;
                        }

                        i++;
                        break;
                    }

                    text.Append(s[i++]);
                }

                tokens.Add(new Token(Kind.String, text.ToString(), text.ToString()));
            }
            else if (char.IsDigit(c) || (c == '-' && i + 1 < s.Length && char.IsDigit(s[i + 1]) && LastIsOperator(tokens)))
            {
                var start = i++;
                while (i < s.Length && (char.IsDigit(s[i]) || s[i] == '.'))
                {
                    i++;
                }

                var text = s[start..i];
                object value = text.Contains('.', StringComparison.Ordinal)
                    ? double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture)
                    : long.Parse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
                tokens.Add(new Token(Kind.Number, text, value));
            }
            else if (char.IsLetter(c) || c == '_' || c == '[')
            {
                var start = i;
                if (c == '[')
                {
                    var close = s.IndexOf(']', i);
                    if (close < 0)
                    {
                        throw new FormatException($"SQL filter '{s}': a bracketed name is not closed.");
                    }

                    tokens.Add(new Token(Kind.Identifier, s[(i + 1)..close]));
                    i = close + 1;
                    continue;
                }

                while (i < s.Length && (char.IsLetterOrDigit(s[i]) || s[i] is '_' or '.' or '-'))
                {
                    i++;
                }

                tokens.Add(new Token(Kind.Identifier, s[start..i]));
            }
            else
            {
                var two = i + 1 < s.Length ? s.Substring(i, 2) : "";
                if (two is "<>" or "!=" or "<=" or ">=")
                {
                    tokens.Add(new Token(Kind.Symbol, two));
                    i += 2;
                }
                else if (c is '=' or '<' or '>' or '(' or ')' or ',')
                {
                    tokens.Add(new Token(Kind.Symbol, c.ToString()));
                    i++;
                }
                else
                {
                    throw new FormatException($"SQL filter '{s}': unexpected '{c}' at position {i}.");
                }
            }
        }

        tokens.Add(new Token(Kind.End, ""));
        return tokens;
    }

    static bool LastIsOperator(List<Token> tokens) => tokens.Count == 0 || tokens[^1].Kind == Kind.Symbol && tokens[^1].Text != ")";

    sealed class Parser(List<Token> tokens, string source)
    {
        int position;

        Token Peek => tokens[position];

        bool IsWord(string word) => Peek.Kind == Kind.Identifier && string.Equals(Peek.Text, word, StringComparison.OrdinalIgnoreCase);

        bool IsWordAt(int offset, string word) =>
            position + offset < tokens.Count && tokens[position + offset].Kind == Kind.Identifier &&
            string.Equals(tokens[position + offset].Text, word, StringComparison.OrdinalIgnoreCase);

        FormatException Error(string what) => new($"SQL filter '{source}': {what} at '{Peek.Text}'.");

        void Expect(string symbol)
        {
            if (Peek.Kind != Kind.Symbol || Peek.Text != symbol)
            {
                throw Error($"expected '{symbol}'");
            }

            position++;
        }

        public void ExpectEnd()
        {
            if (Peek.Kind != Kind.End)
            {
                throw Error("unexpected text");
            }
        }

        public Func<MessageView, bool> ParseExpression()
        {
            var left = ParseAnd();
            while (IsWord("OR"))
            {
                position++;
                var l = left;
                var r = ParseAnd();
                left = m => l(m) || r(m);
            }

            return left;
        }

        Func<MessageView, bool> ParseAnd()
        {
            var left = ParseNot();
            while (IsWord("AND"))
            {
                position++;
                var l = left;
                var r = ParseNot();
                left = m => l(m) && r(m);
            }

            return left;
        }

        Func<MessageView, bool> ParseNot()
        {
            if (IsWord("NOT"))
            {
                position++;
                var inner = ParseNot();
                return m => !inner(m);
            }

            return ParsePredicate();
        }

        Func<MessageView, bool> ParsePredicate()
        {
            if (Peek.Kind == Kind.Symbol && Peek.Text == "(")
            {
                position++;
                var inner = ParseExpression();
                Expect(")");
                return inner;
            }

            if (IsWord("EXISTS"))
            {
                position++;
                Expect("(");
                var name = Peek.Kind == Kind.Identifier ? Peek.Text : throw Error("expected a property name");
                position++;
                Expect(")");
                return m => Lookup(m, name) is not null;
            }

            if (IsWord("TRUE") && !IsOperatorAt(1))
            {
                position++;
                return _ => true;
            }

            if (IsWord("FALSE") && !IsOperatorAt(1))
            {
                position++;
                return _ => false;
            }

            var left = ParseOperand();
            if (IsWord("IS"))
            {
                position++;
                var negate = false;
                if (IsWord("NOT"))
                {
                    negate = true;
                    position++;
                }

                if (!IsWord("NULL"))
                {
                    throw Error("expected NULL");
                }

                position++;
                return m => (left(m) is null) != negate;
            }

            var not = false;
            if (IsWord("NOT") && (IsWordAt(1, "IN") || IsWordAt(1, "LIKE")))
            {
                not = true;
                position++;
            }

            if (IsWord("IN"))
            {
                position++;
                Expect("(");
                var values = new List<Func<MessageView, object?>> { ParseOperand() };
                while (Peek.Kind == Kind.Symbol && Peek.Text == ",")
                {
                    position++;
                    values.Add(ParseOperand());
                }

                Expect(")");
                return m =>
                {
                    var v = left(m);
                    return v is not null && values.Any(x => ValuesEqual(v, x(m))) != not;
                };
            }

            if (IsWord("LIKE"))
            {
                position++;
                if (Peek.Kind != Kind.String)
                {
                    throw Error("expected a pattern");
                }

                var pattern = new Regex("^" + Regex.Escape((string)Peek.Value!).Replace("%", ".*", StringComparison.Ordinal).Replace("_", ".", StringComparison.Ordinal) + "$",
                    RegexOptions.Singleline | RegexOptions.CultureInvariant, TimeSpan.FromMilliseconds(100));
                position++;
                return m => left(m) is string s && pattern.IsMatch(s) != not;
            }

            if (Peek.Kind != Kind.Symbol || Peek.Text is "(" or ")" or ",")
            {
                throw Error("expected a comparison");
            }

            var op = Peek.Text;
            position++;
            var right = ParseOperand();
            return op switch
            {
                "=" => m => ValuesEqual(left(m), right(m)),
                "<>" or "!=" => m => Compare(left(m), right(m)) is { } c && c != 0,
                "<" => m => Compare(left(m), right(m)) is < 0,
                "<=" => m => Compare(left(m), right(m)) is <= 0,
                ">" => m => Compare(left(m), right(m)) is > 0,
                ">=" => m => Compare(left(m), right(m)) is >= 0,
                _ => throw Error($"unknown operator '{op}'"),
            };
        }

        bool IsOperatorAt(int offset) => position + offset < tokens.Count && tokens[position + offset].Kind == Kind.Symbol && tokens[position + offset].Text is not ")" and not ",";

        Func<MessageView, object?> ParseOperand()
        {
            var token = Peek;
            position++;
            switch (token.Kind)
            {
                case Kind.String:
                case Kind.Number:
                    var literal = token.Value;
                    return _ => literal;
                case Kind.Identifier when string.Equals(token.Text, "NULL", StringComparison.OrdinalIgnoreCase):
                    return _ => null;
                case Kind.Identifier when string.Equals(token.Text, "TRUE", StringComparison.OrdinalIgnoreCase):
                    return _ => true;
                case Kind.Identifier when string.Equals(token.Text, "FALSE", StringComparison.OrdinalIgnoreCase):
                    return _ => false;
                case Kind.Identifier:
                    var name = token.Text;
                    return m => Lookup(m, name);
                default:
                    position--;
                    throw Error("expected a value or property");
            }
        }
    }
}
