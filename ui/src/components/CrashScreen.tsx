import { Component, type ReactNode } from "react";
import { Alert, Button, Container, Stack, Text } from "@mantine/core";
import { IconAlertTriangle } from "@tabler/icons-react";

/** If a screen fails to draw, say so and offer a reload instead of a blank window. */
export class CrashScreen extends Component<{ children: ReactNode }, { error: Error | null }> {
  state = { error: null as Error | null };

  static getDerivedStateFromError(error: Error) {
    return { error };
  }

  render() {
    if (!this.state.error) return this.props.children;
    return (
      <Container size="sm" py="xl">
        <Alert color="red" icon={<IconAlertTriangle />} title="Warden could not show this screen">
          <Stack gap="sm">
            <Text size="sm">Something unexpected happened while drawing it: {this.state.error.message}</Text>
            <Text size="sm">
              Nothing was changed. Reload the window to continue; if it happens again, restart Warden.
            </Text>
            <Button color="red" variant="light" onClick={() => window.location.reload()} w="fit-content">
              Reload
            </Button>
          </Stack>
        </Alert>
      </Container>
    );
  }
}
