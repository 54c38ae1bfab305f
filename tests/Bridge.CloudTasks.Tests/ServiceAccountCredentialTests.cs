using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Web;
using Bridge.CloudTasks.Tests.Infrastructure;
using Bridge.Testing;

namespace Bridge.CloudTasks.Tests;

/// <summary>
/// A service account key file, through Google.Apis.Auth: the client signs a JWT assertion with the key, exchanges it
/// at the file's token_uri (a loopback endpoint here) and sends the resulting token to Cloud Tasks.
/// </summary>
public sealed class ServiceAccountCredentialTests
{
    [Fact]
    public async Task A_key_file_is_exchanged_for_a_token_that_is_sent_with_calls()
    {
        using var rsa = RSA.Create(2048);
        await using var tokenEndpoint = await HttpTargetServer.StartJsonAsync(_ => (200, """{"access_token":"sa-access-token","token_type":"Bearer","expires_in":3600}"""));
        await using var server = await RecordingCloudTasksServer.StartAsync(tls: true);
        var keyFile = Path.Combine(Path.GetTempPath(), $"bridge-sa-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(keyFile, JsonSerializer.Serialize(new Dictionary<string, string>
        {
            ["type"] = "service_account",
            ["project_id"] = "p",
            ["private_key_id"] = "key-1",
            ["private_key"] = rsa.ExportPkcs8PrivateKeyPem(),
            ["client_email"] = "bridge@p.iam.gserviceaccount.com",
            ["client_id"] = "1234567890",
            ["token_uri"] = new Uri(tokenEndpoint.Address, "/token").ToString(),
        }));

        try
        {
            using var handler = server.CreateTrustingHandler();
            using var client = new CloudTasksClientBuilder { Endpoint = server.Address.ToString(), CredentialsPath = keyFile, HttpHandler = handler, EmulatorDetection = EmulatorDetection.None }.Build();
            await client.GetQueueAsync(new QueueName("p", "l", "q"));
        }
        finally
        {
            File.Delete(keyFile);
        }

        Assert.Equal("Bearer sa-access-token", server.Single("GetQueue").Headers["authorization"]);
        var form = HttpUtility.ParseQueryString(Assert.Single(tokenEndpoint.Requests).Text);
        Assert.Equal("urn:ietf:params:oauth:grant-type:jwt-bearer", form["grant_type"]);

        // The assertion is signed with the key and names the account and the cloud-platform scope.
        var parts = form["assertion"]!.Split('.');
        Assert.True(rsa.VerifyData(Encoding.ASCII.GetBytes(parts[0] + "." + parts[1]), Base64UrlDecode(parts[2]), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1));
        using var claims = JsonDocument.Parse(Base64UrlDecode(parts[1]));
        Assert.Equal("bridge@p.iam.gserviceaccount.com", claims.RootElement.GetProperty("iss").GetString());
        Assert.Contains("https://www.googleapis.com/auth/cloud-platform", claims.RootElement.GetProperty("scope").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_credential_file_of_an_unknown_type_is_refused_with_its_type_named()
    {
        await using var server = await RecordingCloudTasksServer.StartAsync(tls: true);
        var file = Path.Combine(Path.GetTempPath(), $"bridge-cred-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(file, """{"type":"executable_command","command":"/bin/sh"}""");
        try
        {
            using var handler = server.CreateTrustingHandler();
            using var client = new CloudTasksClientBuilder { Endpoint = server.Address.ToString(), CredentialsPath = file, HttpHandler = handler, EmulatorDetection = EmulatorDetection.None }.Build();
            var error = await Assert.ThrowsAsync<CloudTasksException>(() => client.GetQueueAsync(new QueueName("p", "l", "q")));
            Assert.Contains("has type 'executable_command'", error.Message, StringComparison.Ordinal);
            Assert.Equal(CloudTasksFailureReason.Unauthenticated, error.Reason);
            Assert.False(error.IsTransient);
        }
        finally
        {
            File.Delete(file);
        }

        Assert.Empty(server.Calls);
    }

    private static byte[] Base64UrlDecode(string value)
    {
        var s = value.Replace('-', '+').Replace('_', '/');
        return Convert.FromBase64String(s.PadRight(s.Length + ((4 - (s.Length % 4)) % 4), '='));
    }
}
