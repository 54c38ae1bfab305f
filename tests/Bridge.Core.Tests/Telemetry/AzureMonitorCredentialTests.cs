using Azure.Identity;
using Bridge.Core.Telemetry;

namespace Bridge.Core.Tests.Telemetry;

/// <summary>The deployment turns off Application Insights' key ingestion; the worker must then authenticate.</summary>
public sealed class AzureMonitorCredentialTests
{
    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("  ")]
    public void No_authentication_string_means_no_credential(string? value) =>
        Assert.Null(AzureMonitorCredential.FromAuthenticationString(value));

    [Theory]
    [InlineData("ClientId=4c6e7d2a-1b2c-4d5e-8f90-123456789abc;Authorization=AAD")]
    [InlineData("Authorization=AAD")]
    [InlineData(" authorization = aad ; clientid = 4c6e7d2a-1b2c-4d5e-8f90-123456789abc ")]
    public void Entra_authentication_uses_the_managed_identity(string value) =>
        Assert.IsType<ManagedIdentityCredential>(AzureMonitorCredential.FromAuthenticationString(value));

    [Theory]
    [InlineData("ClientId=abc", "Authorization must be AAD")]
    [InlineData("Authorization=Key", "Authorization must be AAD")]
    [InlineData("Authorization=AAD;Secret=x", "unknown key 'Secret'")]
    [InlineData("AAD", "'AAD' is not key=value")]
    public void A_malformed_string_is_refused_by_name(string value, string expected)
    {
        var error = Assert.Throws<FormatException>(() => AzureMonitorCredential.FromAuthenticationString(value));
        Assert.Contains(AzureMonitorCredential.SettingName, error.Message, StringComparison.Ordinal);
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }
}
