using Azure.Core;
using Azure.Identity;

namespace Bridge.Core.Telemetry;

/// <summary>
/// Entra ID authentication for the Azure Monitor exporter, read from <c>APPLICATIONINSIGHTS_AUTHENTICATION_STRING</c>
/// (the Functions host's own setting, <c>Authorization=AAD;ClientId=…</c>), so the worker's telemetry reaches an
/// Application Insights resource whose local (key) authentication is off.
/// </summary>
public static class AzureMonitorCredential
{
    public const string SettingName = "APPLICATIONINSIGHTS_AUTHENTICATION_STRING";

    /// <summary>
    /// The managed identity credential the string names (user-assigned with <c>ClientId</c>, else system-assigned);
    /// null when the string is empty or asks for no Entra ID authentication.
    /// </summary>
    public static TokenCredential? FromAuthenticationString(string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return null;
        }

        string? authorization = null;
        string? clientId = null;
        foreach (var part in value.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var equals = part.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0)
            {
                throw new FormatException($"{SettingName}: '{part}' is not key=value.");
            }

            var key = part[..equals].Trim();
            var setting = part[(equals + 1)..].Trim();
            if (key.Equals("Authorization", StringComparison.OrdinalIgnoreCase))
            {
                authorization = setting;
            }
            else if (key.Equals("ClientId", StringComparison.OrdinalIgnoreCase))
            {
                clientId = setting;
            }
            else
            {
                throw new FormatException($"{SettingName}: unknown key '{key}' (expected Authorization and ClientId).");
            }
        }

        if (!string.Equals(authorization, "AAD", StringComparison.OrdinalIgnoreCase))
        {
            throw new FormatException($"{SettingName}: Authorization must be AAD.");
        }

        return string.IsNullOrEmpty(clientId)
            ? new ManagedIdentityCredential(ManagedIdentityId.SystemAssigned)
            : new ManagedIdentityCredential(ManagedIdentityId.FromUserAssignedClientId(clientId));
    }
}
