using System.Globalization;
using System.Text.Json;

namespace Bridge.Emulators.CloudTasks.Internal;

/// <summary>
/// The admin surface of <see cref="EmulatorFaults"/>:
/// <c>POST /admin/faults</c> <c>{"methods": ["CreateTask"], "status": "UNAVAILABLE", "durationSeconds": 30, "count": 5, "message": "…"}</c>,
/// <c>POST /admin/faults/unreachable</c> <c>{"durationSeconds": 10}</c>, <c>GET /admin/faults</c>,
/// <c>DELETE /admin/faults</c> (everything, outage included) and <c>DELETE /admin/faults/{id}</c>.
/// </summary>
internal static class FaultAdminEndpoints
{
    private const int MaxBodyBytes = 64 * 1024;

    public static void Map(IEndpointRouteBuilder endpoints, EmulatorFaults faults)
    {
        endpoints.MapPost("/admin/faults", async (HttpRequest request) =>
        {
            var (body, problem) = await ReadAsync(request);
            if (problem is not null)
            {
                return problem;
            }

            if (!body.TryGetProperty("status", out var statusValue))
            {
                return BadRequest("'status' is required: a gRPC status name such as \"UNAVAILABLE\" or its number.");
            }

            var statusText = statusValue.ValueKind switch
            {
                JsonValueKind.String => statusValue.GetString() ?? string.Empty,
                JsonValueKind.Number => statusValue.GetRawText(),
                _ => string.Empty,
            };
            if (!FaultRules.TryParseStatus(statusText, out var status))
            {
                return BadRequest($"'status' '{(statusText.Length > 0 ? statusText : statusValue.GetRawText())}' is not a gRPC status name (e.g. \"UNAVAILABLE\") or number.");
            }

            var methods = new List<string>();
            if (body.TryGetProperty("methods", out var methodsValue))
            {
                if (methodsValue.ValueKind != JsonValueKind.Array || methodsValue.EnumerateArray().Any(m => m.ValueKind != JsonValueKind.String))
                {
                    return BadRequest("'methods' must be an array of RPC names.");
                }

                methods.AddRange(methodsValue.EnumerateArray().Select(m => m.GetString()!));
            }

            if (!TryReadSeconds(body, "durationSeconds", out var duration, out var durationProblem))
            {
                return durationProblem!;
            }

            int? count = null;
            if (body.TryGetProperty("count", out var countValue))
            {
                if (!countValue.TryGetInt32(out var c))
                {
                    return BadRequest($"'count' '{countValue.GetRawText()}' must be a whole number.");
                }

                count = c;
            }

            var message = body.TryGetProperty("message", out var messageValue) && messageValue.ValueKind == JsonValueKind.String ? messageValue.GetString() : null;
            if (message is { Length: > 1024 })
            {
                return BadRequest("'message' is longer than 1024 characters.");
            }

            try
            {
                var fault = faults.Fail(status, methods, duration, count, message);
                return Results.Json(ToJson(fault), statusCode: StatusCodes.Status201Created);
            }
            catch (ArgumentException ex)
            {
                return BadRequest(ex.Message);
            }
        });

        endpoints.MapPost("/admin/faults/unreachable", async (HttpRequest request) =>
        {
            var (body, problem) = await ReadAsync(request);
            if (problem is not null)
            {
                return problem;
            }

            if (!TryReadSeconds(body, "durationSeconds", out var duration, out var durationProblem))
            {
                return durationProblem!;
            }

            if (duration is not { } d || d <= TimeSpan.Zero || d > EmulatorFaults.MaxDuration)
            {
                return BadRequest($"'durationSeconds' is required, above zero and at most {EmulatorFaults.MaxDuration.TotalSeconds.ToString(CultureInfo.InvariantCulture)}.");
            }

            faults.MakeUnreachable(d);
            return Results.Json(new { unreachableUntil = faults.UnreachableUntil }, statusCode: StatusCodes.Status201Created);
        });

        endpoints.MapGet("/admin/faults", () => Results.Json(new
        {
            unreachableUntil = faults.UnreachableUntil,
            faults = faults.Active.Select(ToJson),
        }));

        endpoints.MapDelete("/admin/faults", () =>
        {
            faults.Clear();
            return Results.NoContent();
        });

        endpoints.MapDelete("/admin/faults/{id}", (string id) =>
            faults.Remove(id) ? Results.NoContent() : Results.Problem($"No active fault has id '{id}'.", statusCode: StatusCodes.Status404NotFound));
    }

    private static object ToJson(InjectedFault fault) => new
    {
        id = fault.Id,
        methods = fault.Methods,
        status = GoogleErrorEnvelope.StatusName(fault.Status),
        message = fault.Message,
        expiresAt = fault.ExpiresAt,
        remainingCount = fault.RemainingCount,
    };

    private static async Task<(JsonElement Body, IResult? Problem)> ReadAsync(HttpRequest request)
    {
        if (request.ContentLength > MaxBodyBytes)
        {
            return (default, Results.Problem($"The body is larger than {MaxBodyBytes} bytes.", statusCode: StatusCodes.Status413PayloadTooLarge));
        }

        try
        {
            using var limited = new MemoryStream();
            await request.Body.CopyToAsync(limited, request.HttpContext.RequestAborted);
            if (limited.Length > MaxBodyBytes)
            {
                return (default, Results.Problem($"The body is larger than {MaxBodyBytes} bytes.", statusCode: StatusCodes.Status413PayloadTooLarge));
            }

            if (limited.Length == 0)
            {
                return (default, BadRequest("The body must be a JSON object."));
            }

            using var document = JsonDocument.Parse(limited.ToArray());
            return document.RootElement.ValueKind == JsonValueKind.Object
                ? (document.RootElement.Clone(), null)
                : (default, BadRequest("The body must be a JSON object."));
        }
        catch (JsonException ex)
        {
            return (default, BadRequest($"The body is not valid JSON: {ex.Message}"));
        }
    }

    private static bool TryReadSeconds(JsonElement body, string name, out TimeSpan? value, out IResult? problem)
    {
        value = null;
        problem = null;
        if (!body.TryGetProperty(name, out var element))
        {
            return true;
        }

        if (!element.TryGetDouble(out var seconds) || !double.IsFinite(seconds) || seconds <= 0 || seconds > EmulatorFaults.MaxDuration.TotalSeconds)
        {
            problem = BadRequest($"'{name}' '{element.GetRawText()}' must be a number of seconds above zero and at most {EmulatorFaults.MaxDuration.TotalSeconds.ToString(CultureInfo.InvariantCulture)}.");
            return false;
        }

        value = TimeSpan.FromSeconds(seconds);
        return true;
    }

    private static IResult BadRequest(string detail) => Results.Problem(detail, statusCode: StatusCodes.Status400BadRequest, title: "Invalid fault");
}
