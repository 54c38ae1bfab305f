using System.Text;
using System.Text.Json.Nodes;
using Google.Api;
using Google.Protobuf.Reflection;

namespace Bridge.CloudTasks.Tests.Infrastructure;

/// <summary>
/// Compares compiled descriptors with the official client's protobuf.js JSON (protos.json): every message, enum,
/// field (name, number, type, label, map key, proto3 optional, oneof), extension (extendee, number, type), RPC (request,
/// response, HTTP rule, method signatures, long-running operation_info), both ways.
/// Returns one line per difference, each naming the element.
/// </summary>
internal static class WireContractComparer
{
    public static List<string> Compare(JsonNode officialRoot, IReadOnlyList<FileDescriptor> ours, IReadOnlyCollection<string> packages, IReadOnlyCollection<string> knownOmissions)
    {
        var official = Flatten(officialRoot);
        var mine = Flatten(ours);
        var diffs = new List<string>();

        foreach (var (name, element) in official.Where(e => InScope(e.Key, packages)).OrderBy(e => e.Key, StringComparer.Ordinal))
        {
            if (knownOmissions.Contains(name))
            {
                if (mine.ContainsKey(name))
                {
                    diffs.Add($"{name}: listed as left out, but the project defines it (remove it from the omissions)");
                }

                continue;
            }

            if (!mine.TryGetValue(name, out var our))
            {
                diffs.Add($"{name}: missing from the project's contract ({element.Kind})");
                continue;
            }

            if (our.Kind != element.Kind)
            {
                diffs.Add($"{name}: official is a {element.Kind}, the project's a {our.Kind}");
                continue;
            }

            foreach (var (key, value) in element.Properties)
            {
                if (!our.Properties.TryGetValue(key, out var ourValue))
                {
                    diffs.Add($"{name}: missing {key} (official: {value})");
                }
                else if (!string.Equals(value, ourValue, StringComparison.Ordinal))
                {
                    diffs.Add($"{name}: {key} differs: official '{value}', project '{ourValue}'");
                }
            }

            foreach (var key in our.Properties.Keys.Except(element.Properties.Keys))
            {
                diffs.Add($"{name}: the project has {key} = {our.Properties[key]}, which the official contract lacks");
            }
        }

        foreach (var name in mine.Keys.Where(k => InScope(k, packages) && !official.ContainsKey(k)).Order(StringComparer.Ordinal))
        {
            diffs.Add($"{name}: defined by the project but not in the official contract");
        }

        return diffs;
    }

    /// <summary>How many official elements (messages, enums, services, RPCs) the comparison covers.</summary>
    public static int CountCompared(JsonNode officialRoot, IReadOnlyCollection<string> packages, IReadOnlyCollection<string> knownOmissions) =>
        Flatten(officialRoot).Keys.Count(k => InScope(k, packages) && !knownOmissions.Contains(k));

    private static bool InScope(string fullName, IReadOnlyCollection<string> packages) =>
        packages.Any(p => fullName.StartsWith(p + ".", StringComparison.Ordinal));

    internal sealed record Element(string Kind, Dictionary<string, string> Properties);

    // ---- official side: protobuf.js JSON ----

    private static Dictionary<string, Element> Flatten(JsonNode root)
    {
        var types = new HashSet<string>(StringComparer.Ordinal);
        CollectTypeNames(root, string.Empty, types);
        var result = new Dictionary<string, Element>(StringComparer.Ordinal);
        Walk(root, string.Empty, types, result);
        return result;
    }

    private static void CollectTypeNames(JsonNode node, string prefix, HashSet<string> types)
    {
        if (node["nested"] is not JsonObject nested)
        {
            return;
        }

        foreach (var (name, child) in nested)
        {
            var full = prefix.Length == 0 ? name : prefix + "." + name;
            if (child?["fields"] is not null || child?["values"] is not null)
            {
                types.Add(full);
            }

            CollectTypeNames(child!, full, types);
        }
    }

    private static void Walk(JsonNode node, string prefix, HashSet<string> types, Dictionary<string, Element> result)
    {
        if (node["nested"] is not JsonObject nested)
        {
            return;
        }

        foreach (var (name, child) in nested)
        {
            var full = prefix.Length == 0 ? name : prefix + "." + name;
            if (child!["fields"] is JsonObject fields)
            {
                var props = new Dictionary<string, string>(StringComparer.Ordinal);
                var oneofMembers = new Dictionary<string, string>(StringComparer.Ordinal);
                if (child["oneofs"] is JsonObject oneofs)
                {
                    foreach (var (oneofName, oneof) in oneofs)
                    {
                        if (oneofName.StartsWith('_'))
                        {
                            continue; // synthetic oneof of a proto3 optional field
                        }

                        foreach (var member in oneof!["oneof"]!.AsArray())
                        {
                            oneofMembers[member!.GetValue<string>()] = oneofName;
                        }
                    }
                }

                foreach (var (fieldName, field) in fields)
                {
                    var type = field!["type"]!.GetValue<string>();
                    var resolved = IsScalar(type) ? type : Resolve(type, full, types);
                    var sb = new StringBuilder();
                    sb.Append("#").Append(field["id"]!.GetValue<int>()).Append(' ');
                    sb.Append(field["rule"]?.GetValue<string>() == "repeated" ? "repeated " : string.Empty);
                    if (field["keyType"] is { } keyType)
                    {
                        sb.Append("map<").Append(keyType.GetValue<string>()).Append(", ").Append(resolved).Append('>');
                    }
                    else
                    {
                        sb.Append(resolved);
                    }

                    if (field["options"]?["proto3_optional"]?.GetValue<bool>() == true)
                    {
                        sb.Append(" optional");
                    }

                    if (oneofMembers.TryGetValue(fieldName, out var oneofName))
                    {
                        sb.Append(" oneof ").Append(oneofName);
                    }

                    props["field " + fieldName] = sb.ToString();
                }

                result[full] = new Element("message", props);
            }
            else if (child["values"] is JsonObject values)
            {
                result[full] = new Element("enum", values.ToDictionary(v => "value " + v.Key, v => v.Value!.GetValue<int>().ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparer.Ordinal));
            }
            else if (child["methods"] is JsonObject methods)
            {
                result[full] = new Element("service", []);
                foreach (var (methodName, method) in methods)
                {
                    var props = new Dictionary<string, string>(StringComparer.Ordinal)
                    {
                        ["request"] = Resolve(method!["requestType"]!.GetValue<string>(), full, types),
                        ["response"] = Resolve(method["responseType"]!.GetValue<string>(), full, types),
                    };
                    if (method["options"] is JsonObject options)
                    {
                        foreach (var verb in new[] { "get", "post", "put", "patch", "delete" })
                        {
                            if (options[$"(google.api.http).{verb}"] is { } path)
                            {
                                props["http"] = $"{verb.ToUpperInvariant()} {path.GetValue<string>()} body={options["(google.api.http).body"]?.GetValue<string>() ?? string.Empty}";
                            }
                        }

                        if (options["(google.longrunning.operation_info).response_type"] is { } responseType)
                        {
                            props["operation_info"] = $"response={responseType.GetValue<string>()} metadata={options["(google.longrunning.operation_info).metadata_type"]?.GetValue<string>() ?? string.Empty}";
                        }
                    }

                    // parsedOptions keeps every signature when a method has several; options keeps only the last.
                    var signatures = (method["parsedOptions"] as JsonArray ?? [])
                        .Select(o => o?["(google.api.method_signature)"]?.GetValue<string>())
                        .OfType<string>()
                        .ToList();
                    if (signatures.Count > 0)
                    {
                        props["signatures"] = string.Join(" | ", signatures);
                    }

                    result[full + "/" + methodName] = new Element("rpc", props);
                }
            }
            else if (child["extend"] is { } extendee)
            {
                var type = child["type"]!.GetValue<string>();
                result[full] = new Element("extension", new Dictionary<string, string>(StringComparer.Ordinal)
                {
                    ["extends"] = Resolve(extendee.GetValue<string>(), prefix, types),
                    ["field"] = $"#{child["id"]!.GetValue<int>()} {(child["rule"]?.GetValue<string>() == "repeated" ? "repeated " : string.Empty)}{(IsScalar(type) ? type : Resolve(type, prefix, types))}",
                });
            }

            Walk(child, full, types, result);
        }
    }

    /// <summary>protobuf.js resolves a type name from the innermost scope outwards.</summary>
    private static string Resolve(string type, string scope, HashSet<string> types)
    {
        if (type.StartsWith('.'))
        {
            return type[1..];
        }

        for (var s = scope; ; s = s.Contains('.', StringComparison.Ordinal) ? s[..s.LastIndexOf('.')] : string.Empty)
        {
            var candidate = s.Length == 0 ? type : s + "." + type;
            if (types.Contains(candidate))
            {
                return candidate;
            }

            if (s.Length == 0)
            {
                return "?" + type;
            }
        }
    }

    private static bool IsScalar(string type) => type is "double" or "float" or "int64" or "uint64" or "int32" or "fixed64" or "fixed32"
        or "bool" or "string" or "bytes" or "uint32" or "sfixed32" or "sfixed64" or "sint32" or "sint64";

    // ---- project side: compiled descriptors ----

    private static Dictionary<string, Element> Flatten(IReadOnlyList<FileDescriptor> files)
    {
        var result = new Dictionary<string, Element>(StringComparer.Ordinal);
        foreach (var file in files)
        {
            foreach (var message in file.MessageTypes)
            {
                AddMessage(message, result);
            }

            foreach (var e in file.EnumTypes)
            {
                AddEnum(e, result);
            }

            foreach (var extension in file.Extensions.UnorderedExtensions)
            {
                result[$"{file.Package}.{extension.JsonName}"] = new Element("extension", new Dictionary<string, string>(StringComparer.Ordinal)
                {
                    ["extends"] = extension.ExtendeeType.FullName,
                    ["field"] = $"#{extension.FieldNumber} {(extension.IsRepeated ? "repeated " : string.Empty)}{TypeName(extension)}",
                });
            }

            foreach (var service in file.Services)
            {
                result[service.FullName] = new Element("service", []);
                foreach (var method in service.Methods)
                {
                    var props = new Dictionary<string, string>(StringComparer.Ordinal)
                    {
                        ["request"] = method.InputType.FullName,
                        ["response"] = method.OutputType.FullName,
                    };
                    if (method.GetOptions()?.GetExtension(AnnotationsExtensions.Http) is { } rule)
                    {
                        var (verb, path) = rule.PatternCase switch
                        {
                            HttpRule.PatternOneofCase.Get => ("GET", rule.Get),
                            HttpRule.PatternOneofCase.Post => ("POST", rule.Post),
                            HttpRule.PatternOneofCase.Put => ("PUT", rule.Put),
                            HttpRule.PatternOneofCase.Patch => ("PATCH", rule.Patch),
                            HttpRule.PatternOneofCase.Delete => ("DELETE", rule.Delete),
                            _ => ("CUSTOM", rule.Custom?.Path ?? string.Empty),
                        };
                        props["http"] = $"{verb} {path} body={rule.Body}";
                    }

                    if (method.GetOptions()?.GetExtension(LongRunning.OperationsExtensions.OperationInfo) is { } info)
                    {
                        props["operation_info"] = $"response={info.ResponseType} metadata={info.MetadataType}";
                    }

                    if (method.GetOptions()?.GetExtension(ClientExtensions.MethodSignature) is { Count: > 0 } signatures)
                    {
                        props["signatures"] = string.Join(" | ", signatures);
                    }

                    result[service.FullName + "/" + method.Name] = new Element("rpc", props);
                }
            }
        }

        return result;
    }

    private static void AddMessage(MessageDescriptor message, Dictionary<string, Element> result)
    {
        var props = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var field in message.Fields.InFieldNumberOrder())
        {
            var sb = new StringBuilder();
            sb.Append('#').Append(field.FieldNumber).Append(' ');
            if (field.IsMap)
            {
                var key = field.MessageType.FindFieldByNumber(1);
                var value = field.MessageType.FindFieldByNumber(2);
                sb.Append("map<").Append(TypeName(key)).Append(", ").Append(TypeName(value)).Append('>');
            }
            else
            {
                sb.Append(field.IsRepeated ? "repeated " : string.Empty).Append(TypeName(field));
            }

            if (field.ContainingOneof is { IsSynthetic: true })
            {
                sb.Append(" optional");
            }
            else if (field.ContainingOneof is { } oneof)
            {
                sb.Append(" oneof ").Append(ToCamel(oneof.Name));
            }

            props["field " + field.JsonName] = sb.ToString();
        }

        result[message.FullName] = new Element("message", props);
        foreach (var nested in message.NestedTypes.Where(n => !n.GetOptions()?.MapEntry ?? true))
        {
            AddMessage(nested, result);
        }

        foreach (var e in message.EnumTypes)
        {
            AddEnum(e, result);
        }
    }

    private static void AddEnum(EnumDescriptor e, Dictionary<string, Element> result) =>
        result[e.FullName] = new Element("enum", e.Values.ToDictionary(v => "value " + v.Name, v => v.Number.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparer.Ordinal));

    private static string TypeName(FieldDescriptor field) => field.FieldType switch
    {
        FieldType.Message or FieldType.Group => field.MessageType.FullName,
        FieldType.Enum => field.EnumType.FullName,
        FieldType.SInt32 => "sint32",
        FieldType.SInt64 => "sint64",
        FieldType.SFixed32 => "sfixed32",
        FieldType.SFixed64 => "sfixed64",
        FieldType.UInt32 => "uint32",
        FieldType.UInt64 => "uint64",
        FieldType.Fixed32 => "fixed32",
        FieldType.Fixed64 => "fixed64",
        _ => field.FieldType.ToString().ToLowerInvariant(),
    };

    private static string ToCamel(string snake)
    {
        var sb = new StringBuilder();
        var upper = false;
        foreach (var c in snake)
        {
            if (c == '_')
            {
                upper = true;
                continue;
            }

            sb.Append(upper ? char.ToUpperInvariant(c) : c);
            upper = false;
        }

        return sb.ToString();
    }
}
