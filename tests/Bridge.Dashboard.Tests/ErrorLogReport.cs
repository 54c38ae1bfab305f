using Bridge.Testing;

// Every ErrorLogGuard a test makes is checked when the test is over, next to the test's own result.
[assembly: ReportUnexpectedErrorLogs]
